"""Small building blocks of the xLSTM blocks: causal depthwise conv, block-diagonal (headwise) linear,
per-head norm, and the initialisations of the paper's setup."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def small_init_(w: torch.Tensor, fan_in: int) -> torch.Tensor:
    """'Small init' used for the projections: N(0, sqrt(2 / (5 d)))."""
    return nn.init.normal_(w, mean=0.0, std=math.sqrt(2.0 / (5.0 * fan_in)))


def scaled_init_(w: torch.Tensor, fan_in: int, num_blocks: int) -> torch.Tensor:
    """Scaled init for projections that write into the residual stream: N(0, 2 / (num_blocks sqrt(d)))."""
    return nn.init.normal_(w, mean=0.0, std=2.0 / (num_blocks * math.sqrt(fan_in)))


class CausalConv1d(nn.Module):
    """Depthwise causal convolution over time with bias. The state is the last kernel_size - 1 inputs."""

    SMALL = 1 << 16  # inputs up to this many elements take the shifted-sum path (a depthwise conv1d call and
    # its backward cost more than the K products for the small batches of RL updates and streaming)

    def __init__(self, channels: int, kernel_size: int):
        super().__init__()
        self.channels, self.kernel_size = channels, kernel_size
        self.weight = nn.Parameter(torch.empty(channels, kernel_size))
        self.bias = nn.Parameter(torch.empty(channels))
        bound = 1.0 / math.sqrt(kernel_size)
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def init_state(self, batch_size: int, device=None, dtype=None) -> torch.Tensor:
        return torch.zeros(batch_size, self.kernel_size - 1, self.channels, device=device, dtype=dtype)

    def forward(self, x: torch.Tensor, state: torch.Tensor | None = None):
        """x: (B, T, C); state: (B, K-1, C) or None (zeros). Returns y (B, T, C) and the new state."""
        if state is None:
            state = self.init_state(x.shape[0], x.device, x.dtype)
        xpad = torch.cat([state.to(x.dtype), x], dim=1)
        K, T = self.kernel_size, x.shape[1]
        if x.numel() <= self.SMALL:  # a sum of K shifted products: for small inputs far cheaper (and its
            y = self.bias + xpad[:, :T] * self.weight[:, 0]  # backward too) than a depthwise conv call
            for k in range(1, K):
                y = y + xpad[:, k:k + T] * self.weight[:, k]
        else:
            y = F.conv1d(xpad.transpose(1, 2), self.weight.unsqueeze(1), self.bias, groups=self.channels)
            y = y.transpose(1, 2)
        return y, xpad[:, xpad.shape[1] - (K - 1):]

    def step(self, x: torch.Tensor, state: torch.Tensor):
        """x: (B, C); state: (B, K-1, C). Returns y (B, C) and the new state."""
        window = torch.cat([state.to(x.dtype), x.unsqueeze(1)], dim=1)  # (B, K, C)
        y = torch.einsum("bkc,ck->bc", window, self.weight) + self.bias
        return y, window[:, 1:]


class HeadwiseLinear(nn.Module):
    """Block-diagonal linear map without bias: the input is cut into `num_blocks` blocks, each mapped by its
    own (in/num_blocks x out/num_blocks) matrix."""

    def __init__(self, in_features: int, out_features: int, num_blocks: int):
        super().__init__()
        if in_features % num_blocks or out_features % num_blocks:
            raise ValueError(f"num_blocks ({num_blocks}) must divide in_features ({in_features}) "
                             f"and out_features ({out_features})")
        self.num_blocks = num_blocks
        self.weight = nn.Parameter(torch.empty(num_blocks, in_features // num_blocks, out_features // num_blocks))
        small_init_(self.weight, in_features // num_blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xb = x.unflatten(-1, (self.num_blocks, -1))
        return torch.einsum("...nb,nbc->...nc", xb, self.weight).flatten(-2)


def blockdiag_project(x: torch.Tensor, W: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """x (..., H*Dh), W (G, H, Dh, Dh) [, bias (H, 1, G*Dh)] -> (H, N, G*Dh) with N = x[..., 0].numel():
    head hh of every row of x times W[g, hh] for each g, as one batched product over heads."""
    G, H, Dh, _ = W.shape
    xh = x.reshape(-1, H, Dh).transpose(0, 1)  # (H, N, Dh)
    Wh = W.permute(1, 2, 0, 3).reshape(H, Dh, G * Dh)
    return torch.bmm(xh, Wh) if bias is None else torch.baddbmm(bias, xh, Wh)


class MultiHeadNorm(nn.Module):
    """GroupNorm with one group per head: a LayerNorm over each head's features, a weight and no bias.
    Input (..., H, Dh), output (..., H * Dh)."""

    def __init__(self, num_heads: int, head_dim: int, eps: float = 1e-5):
        super().__init__()
        self.num_heads, self.head_dim, self.eps = num_heads, head_dim, eps
        self.weight = nn.Parameter(torch.ones(num_heads * head_dim))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        h = F.layer_norm(h, (self.head_dim,), eps=self.eps)
        return h.flatten(-2) * self.weight


class GatedFFN(nn.Module):
    """Gated GeLU MLP of the post up-projection block: down(gelu(gate) * up)."""

    def __init__(self, d_model: int, inner: int, num_blocks: int):
        super().__init__()
        self.up = nn.Linear(d_model, 2 * inner, bias=False)
        self.down = nn.Linear(inner, d_model, bias=False)
        small_init_(self.up.weight, d_model)
        scaled_init_(self.down.weight, inner, num_blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.up(x).chunk(2, dim=-1)
        return self.down(F.gelu(gate) * up)


def gate_bias_init_(igate_bias: torch.Tensor, fgate_bias: torch.Tensor, num_heads: int,
                    fgate_range: tuple[float, float] = (3.0, 6.0)) -> None:
    """Gate biases of the paper's setup (Table 6): input gate N(0, 0.1), forget gate spread evenly over
    fgate_range (default [3, 6]) across heads. Biases have a leading head axis or are (num_heads,)."""
    lo, hi = fgate_range
    with torch.no_grad():
        nn.init.normal_(igate_bias, mean=0.0, std=0.1)
        spread = torch.linspace(lo, hi, num_heads) if num_heads > 1 else torch.tensor([float(lo)])
        fgate_bias.copy_(spread.view(num_heads, *([1] * (fgate_bias.dim() - 1))).expand_as(fgate_bias))
