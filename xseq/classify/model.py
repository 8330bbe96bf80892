"""The classifier network: per-channel scaling, then two causal parts whose logits add up.

  kernels   fixed random convolution kernels at many dilations (xseq.classify.kernels): the proportion of
            positive values of each kernel output so far, standardised, and a linear read-out fitted in closed
            form (xseq.classify.ridge). It sees shape at every scale from 9 steps to the whole sequence.
  xlstm     a linear embedding of each patch of `patch` consecutive steps (a causal patch stem: the encoder
            steps once a patch is complete), an xLSTM encoder, and a head on [running mean of the outputs, last
            output] over the complete patches; its logits are 0 before the first patch is complete. Trained by
            gradient descent on what the kernel part leaves: its logits are added to the kernel part's
            leave-one-out logits in the loss.

Either part may be absent. Every summary is a running one, so the prediction for a prefix is what a stream
emits after its last step, and a sequence's prediction does not depend on what it is padded with or batched
beside."""
from __future__ import annotations

import torch
from torch import nn

from ..nn import XLSTMConfig, XLSTMEncoder
from .kernels import CausalKernels

_GRID = 2.0 ** 20


class ClassifierNet(nn.Module):
    def __init__(self, n_features: int, n_classes: int, encoder: XLSTMConfig | None, dropout: float = 0.1,
                 kernels: CausalKernels | None = None, patch: int = 1):
        super().__init__()
        if not isinstance(patch, int) or patch < 1:
            raise ValueError(f"patch must be a positive int; got {patch!r}")
        self.patch = patch
        if encoder is None and kernels is None:
            raise ValueError("ClassifierNet needs an encoder, kernels, or both")
        self.n_classes = n_classes
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("std", torch.ones(n_features))
        self.encoder = None
        if encoder is not None:
            d = encoder.d_model
            self.embed = nn.Linear(n_features * patch, d)
            self.encoder = XLSTMEncoder(encoder)
            self.drop = nn.Dropout(dropout)
            self.head = nn.Linear(2 * d, n_classes)
            if kernels is not None:  # start from the kernel part's answer; training moves away only as it pays
                nn.init.zeros_(self.head.weight)
                nn.init.zeros_(self.head.bias)
        self.kernels = kernels
        if kernels is not None:  # the closed-form read-out: buffers, never touched by the optimiser
            F = kernels.n_features
            self.register_buffer("feature_mean", torch.zeros(F))
            self.register_buffer("feature_scale", torch.ones(F))
            self.register_buffer("ridge_weight", torch.zeros(F, n_classes))
            self.register_buffer("ridge_bias", torch.zeros(n_classes))

    def set_scaling(self, mean, std) -> None:
        with torch.no_grad():
            self.mean.copy_(torch.as_tensor(mean))
            self.std.copy_(torch.as_tensor(std))

    def set_ridge(self, fit) -> None:
        """fit: an xseq.classify.ridge.RidgeFit on this network's kernel features."""
        with torch.no_grad():
            for name, value in (("feature_mean", fit.mean), ("feature_scale", fit.scale),
                                ("ridge_weight", fit.weight), ("ridge_bias", fit.bias)):
                getattr(self, name).copy_(torch.as_tensor(value))

    # ------------------------------------------------------------------ parts
    def scaled64(self, x: torch.Tensor) -> torch.Tensor:
        """The kernels' input: scaled in float64 and rounded to multiples of 2^-20. Kernel outputs are then sums
        of at most 9 * C such numbers times -1 or 2, exact in float64 in any order, so the batch form (conv1d)
        and the step form (einsum) give the same bits and decide `output > bias` alike; without the rounding a
        quantized series (ETTh1's 3 decimals) put outputs exactly on a bias in one form and not in the other."""
        z = (x.double() - self.mean.double()) / self.std.double()
        return torch.round(z * _GRID) / _GRID

    def kernel_features(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.kernels(self.scaled64(x), lengths)

    def kernel_logits_from(self, features: torch.Tensor) -> torch.Tensor:
        """features: (B, n_kernel_features) PPVs -> (B, n_classes) logits, float64."""
        z = (features - self.feature_mean.double()) / self.feature_scale.double()
        return z @ self.ridge_weight.double() + self.ridge_bias.double()

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, T, C) -> (B, T // patch, d_model): one token per complete patch."""
        B, T, C = x.shape
        n = T // self.patch
        z = ((x[:, :n * self.patch] - self.mean) / self.std).reshape(B, n, self.patch * C)
        return self.embed(z)

    def logits_from(self, mean_h: torch.Tensor, last_h: torch.Tensor) -> torch.Tensor:
        return self.head(self.drop(torch.cat([mean_h, last_h], dim=-1)))

    def encoder_logits(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """x: (B, T, C) right-padded; lengths: (B,) in [1, T]. The xLSTM part's logits (B, n_classes): 0 for
        rows shorter than one patch."""
        n = lengths // self.patch                                             # complete patches per row
        B = x.shape[0]
        if x.shape[1] < self.patch:
            return x.new_zeros(B, self.n_classes)
        h, _ = self.encoder(self.tokens(x))                                   # (B, P, d)
        P = h.shape[1]
        valid = torch.arange(P, device=x.device)[None, :] < n[:, None]        # (B, P)
        mean_h = (h * valid.unsqueeze(-1)).sum(1) / n.clamp(min=1)[:, None].to(h.dtype)
        last_h = h[torch.arange(B, device=x.device), (n - 1).clamp(min=0)]
        return torch.where((n > 0)[:, None], self.logits_from(mean_h, last_h), 0.0)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """x: (B, T, C) right-padded; lengths: (B,) in [1, T]. Returns logits (B, n_classes) in x's dtype."""
        logits = 0.0
        if self.kernels is not None:
            logits = self.kernel_logits_from(self.kernel_features(x, lengths)).to(x.dtype)
        if self.encoder is not None:
            logits = logits + self.encoder_logits(x, lengths)
        return logits
