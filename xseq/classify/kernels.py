"""Causal random convolution kernels: the MiniRocket recipe (Dempster et al., 2021) made causal, so that a
stream can carry it.

Kernels: the 84 length-9 patterns with weight 2 at three positions and -1 at the other six (they sum to 0), at
dilations spaced exponentially from 1 to (T - 1) / 8 for the training length T; on multivariate input each
(dilation, pattern) pair sums a random subset of the channels. Each kernel output at step t reads only
x[t - 8d], ..., x[t] (the series is left-padded with its first observation), so it is known at t.

Features: for every kernel a few biases, quantiles of that kernel's output on a random training sequence, and
per bias the proportion of positive values (PPV) of output - bias over the steps seen so far. A PPV is a
running mean: after t observations it is what a batch computation over the t-prefix gives, and a stream
updates it with one count per feature.

All arithmetic runs in float64 from float32-rounded buffers, in the batch form and in the step form alike, on input
rounded to a 2^-20 grid (ClassifierNet.scaled64), where the kernel sums are exact: the indicator output > bias
must come out the same whichever form computes it."""
from __future__ import annotations

import itertools

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

KERNEL_LENGTH = 9
PATTERNS = np.array([[2.0 if j in c else -1.0 for j in range(KERNEL_LENGTH)]
                     for c in itertools.combinations(range(KERNEL_LENGTH), 3)])  # (84, 9)
_PHI = (np.sqrt(5.0) - 1.0) / 2.0  # quantile levels frac(i * phi): a low-discrepancy sequence in (0, 1)


def dilations_for(length: int, slots: int = 32) -> list[int]:
    """`slots` dilations from 1 to (length - 1) / 8, spaced exponentially and rounded down, so that short
    dilations repeat (as in MiniRocket, where they get more features); each slot has its own channel subsets
    and biases."""
    top = max(1.0, (length - 1) / (KERNEL_LENGTH - 1))
    return [int(v) for v in np.floor(2.0 ** np.linspace(0.0, np.log2(top), slots))]


class CausalKernels(nn.Module):
    """PPV features of fixed random kernels. x: (B, T, C) scaled input; features: (B, n_features).

    The buffers (patterns with their channel masks, biases) are set once by `fit`; nothing here is trained."""

    def __init__(self, n_channels: int, dilations: list[int], biases_per_kernel: int, seed: int = 0):
        super().__init__()
        if not dilations or min(dilations) < 1:
            raise ValueError(f"dilations must be positive ints; got {dilations!r}")
        self.dilations = [int(d) for d in dilations]
        self.n_biases = int(biases_per_kernel)
        K, D = len(PATTERNS), len(self.dilations)
        rng = np.random.default_rng(seed)
        # each (slot, pattern) sums a random subset of the channels, of MiniRocket's size 2 ** U(0, log2(min(C, 9) + 1))
        # rounded down: the channels of rank below that size in a random order
        count = np.floor(2 ** rng.uniform(0, np.log2(min(n_channels, KERNEL_LENGTH) + 1), size=(D, K)))
        rank = rng.random((D, K, n_channels)).argsort(-1).argsort(-1)
        masks = (rank < np.clip(count, 1, n_channels)[..., None]).astype(np.float64)
        weight = masks[..., None] * PATTERNS[None, :, None, :]                 # (D, K, C, 9)
        self.register_buffer("weight", torch.tensor(weight, dtype=torch.float32))
        self.register_buffer("bias", torch.zeros(D, K, self.n_biases))
        self.window = (KERNEL_LENGTH - 1) * max(self.dilations) + 1            # steps a stream keeps

    @property
    def n_features(self) -> int:
        return self.bias.shape[0] * self.bias.shape[1] * self.bias.shape[2]

    def outputs(self, x: torch.Tensor, i: int) -> torch.Tensor:
        """Kernel outputs at dilation index i: x (B, T, C) -> (B, K, T), float64."""
        d = self.dilations[i]
        x = x.double().transpose(1, 2)                                         # (B, C, T)
        pad = (KERNEL_LENGTH - 1) * d
        x = torch.cat([x[:, :, :1].expand(-1, -1, pad), x], dim=2)
        return F.conv1d(x, self.weight[i].double(), dilation=d)

    @torch.no_grad()
    def fit(self, x: torch.Tensor, lengths: torch.Tensor, seed: int = 0) -> "CausalKernels":
        """Biases from the training sequences x (B, T, C): for each dilation a random sequence, and per kernel
        quantiles of its outputs at levels frac(i * phi)."""
        rng = np.random.default_rng(seed)
        K, nb = self.bias.shape[1], self.bias.shape[2]
        levels = torch.tensor((np.arange(1, K * nb + 1) * _PHI) % 1.0).view(K, nb)
        for i in range(len(self.dilations)):
            r = int(rng.integers(len(x)))
            out = self.outputs(x[r:r + 1, :int(lengths[r])], i)[0].sort(dim=1).values  # (K, T_r)
            pos = levels * (out.shape[1] - 1)                  # linear interpolation, as torch.quantile
            lo = pos.floor().long()
            hi = (lo + 1).clamp(max=out.shape[1] - 1)
            frac = pos - lo
            q = out.gather(1, lo) * (1 - frac) + out.gather(1, hi) * frac               # (K, nb)
            self.bias[i] = q.float()
        return self

    def forward(self, x: torch.Tensor, lengths: torch.Tensor, chunk: int = 2 ** 24) -> torch.Tensor:
        """PPVs over each row's first lengths[b] steps: (B, n_features), float64."""
        B, T, _ = x.shape
        valid = torch.arange(T, device=x.device)[None, :] < lengths[:, None]  # (B, T)
        K, nb = self.bias.shape[1], self.bias.shape[2]
        rows = max(1, chunk // (K * nb * T))
        feats = []
        for i in range(len(self.dilations)):
            b = self.bias[i].double()[None, :, :, None]                        # (1, K, nb, 1)
            parts = []
            for s in range(0, B, rows):
                out = self.outputs(x[s:s + rows], i)                           # (b, K, T)
                pos = (out[:, :, None, :] > b) & valid[s:s + rows, None, None, :]  # (b, K, nb, T)
                parts.append(pos.sum(-1).reshape(len(out), -1))
            feats.append(torch.cat(parts))
        return torch.cat(feats, dim=1).double() / lengths[:, None].double()

    # ------------------------------------------------------------------ streaming
    def init_state(self, batch_size: int, n_channels: int, device) -> dict:
        return {"window": torch.zeros(batch_size, self.window, n_channels, dtype=torch.float64, device=device),
                "positive": torch.zeros(batch_size, self.n_features, dtype=torch.float64, device=device)}

    def step(self, x: torch.Tensor, first: torch.Tensor, window: torch.Tensor, positive: torch.Tensor):
        """One observation x (B, C) scaled; first (B,) True where x is a row's first observation (the window is
        then filled with it: the left padding). Returns the positive counts and the new window."""
        x = x.double()
        shifted = torch.cat([window[:, 1:], x[:, None]], dim=1)
        window = torch.where(first[:, None, None], x[:, None].expand_as(window), shifted)
        idx = self._taps(x.device)                                             # (D, 9): every dilation at once
        out = torch.einsum("bdjc,dkcj->bdk", window[:, idx], self.weight.double())  # (B, D, K)
        hits = out[..., None] > self.bias.double()[None]                       # (B, D, K, n_biases)
        return positive + hits.reshape(len(x), -1).double(), window

    def _taps(self, device) -> torch.Tensor:
        """The window positions each dilation's 9 taps read at the newest step, built once per device."""
        cache = self.__dict__.setdefault("_tap_cache", {})
        if device not in cache:
            W = self.window
            cache[device] = torch.stack([torch.arange(W - 1 - (KERNEL_LENGTH - 1) * d, W, d, device=device)
                                         for d in self.dilations])
        return cache[device]
