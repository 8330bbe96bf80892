"""TiRex as an nn.Module on xseq's own sLSTM op (every backend of `xseq.ops.slstm` serves it).

  window   the last `context_length` values (left-padded with NaN where shorter)
  scale    loc = nanmean, scale = population nanstd of the window (0 -> |loc| + 1e-5; all-NaN -> 0, 1)
  tokens   patches of P scaled values (NaN -> 0) joined with their observed mask: 2P inputs per token
  embed    ResidualMLP 2P -> ff (ReLU) -> d, plus a linear 2P -> d
  blocks   x += sLSTM(RMSNorm(x)), x += SwiGLU(RMSNorm(x)); the sLSTM: headwise gate projections, the
           recurrence of eqs 28-34 with the stabiliser of eqs 46-48 (sigmoid forget gate), per-head norm
  head     RMSNorm, ResidualMLP d -> ff -> Q * P, unscaled: the next patch's quantiles from the last token
Horizons beyond one patch append a patch of NaN and read the window again."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...nn.layers import MultiHeadNorm, blockdiag_project
from ...ops import slstm
from .config import TiRexConfig

RMS_EPS = 1e-6


class RMSNorm(nn.Module):
    def __init__(self, d: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + RMS_EPS) * self.weight


class ResidualMLP(nn.Module):
    """out(relu(hidden(x))) + skip(x), all with biases."""

    def __init__(self, d_in: int, d_hidden: int, d_out: int):
        super().__init__()
        self.hidden, self.out, self.skip = nn.Linear(d_in, d_hidden), nn.Linear(d_hidden, d_out), nn.Linear(d_in, d_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(F.relu(self.hidden(x))) + self.skip(x)


class TiRexSLSTM(nn.Module):
    """The sLSTM layer: W (4, H, Dh, Dh) headwise input projections in gate order (i, f, z, o), bias
    (4, H, Dh), R (4, H, Dh, Dh) the recurrence, then a per-head norm."""

    def __init__(self, d: int, num_heads: int, backend: str = "auto"):
        super().__init__()
        self.H, self.Dh, self.backend = num_heads, d // num_heads, backend
        self.W = nn.Parameter(torch.zeros(4, self.H, self.Dh, self.Dh))
        self.bias = nn.Parameter(torch.zeros(4, self.H, self.Dh))
        self.R = nn.Parameter(torch.zeros(4, self.H, self.Dh, self.Dh))
        self.norm = MultiHeadNorm(num_heads, self.Dh)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape
        bias = self.bias.permute(1, 0, 2).reshape(self.H, 1, 4 * self.Dh)
        gx = blockdiag_project(x, self.W, bias)  # (H, B*T, 4*Dh): W x + b, eqs 31-34 without R h
        gx = gx.view(self.H, B, T, 4, self.Dh).permute(1, 2, 3, 0, 4)  # (B, T, 4, H, Dh)
        h, _ = slstm(gx, self.R, forget="sigmoid", backend=self.backend)  # eqs 28-34, 46-48
        return self.norm(h)


class TiRexBlock(nn.Module):
    def __init__(self, cfg: TiRexConfig, backend: str = "auto"):
        super().__init__()
        d = cfg.d_model
        self.norm_slstm, self.slstm = RMSNorm(d), TiRexSLSTM(d, cfg.num_heads, backend)
        self.norm_ffn = RMSNorm(d)
        self.ffn_gate = nn.Linear(d, cfg.ffn_dim, bias=False)
        self.ffn_up = nn.Linear(d, cfg.ffn_dim, bias=False)
        self.ffn_down = nn.Linear(cfg.ffn_dim, d, bias=False)

    def forward(self, x: torch.Tensor, last_only: bool = False) -> torch.Tensor:
        """last_only: the recurrence still reads every token, the feed-forward only the last (B, 1, d)."""
        x = x + self.slstm(self.norm_slstm(x))
        if last_only:
            x = x[:, -1:]
        y = self.norm_ffn(x)
        return x + self.ffn_down(F.silu(self.ffn_gate(y)) * self.ffn_up(y))


class TiRexNet(nn.Module):
    def __init__(self, cfg: TiRexConfig, backend: str = "auto"):
        super().__init__()
        self.cfg = cfg
        P, d = cfg.patch_size, cfg.d_model
        self.embed = ResidualMLP(2 * P, cfg.input_ff_dim, d)
        self.blocks = nn.ModuleList(TiRexBlock(cfg, backend) for _ in range(cfg.num_blocks))
        self.out_norm = RMSNorm(d)
        self.head = ResidualMLP(d, cfg.input_ff_dim, len(cfg.quantiles) * P)

    @property
    def median_index(self) -> int:
        return self.cfg.quantiles.index(0.5)

    def set_backend(self, backend: str) -> None:
        for b in self.blocks:
            b.slstm.backend = backend

    def forward(self, tokens: torch.Tensor, last_only: bool = False) -> torch.Tensor:
        """tokens: (B, N, 2P) scaled patch values (NaN set to 0) and their observed mask. Returns every
        token's forecast of the patch after it, (B, N, Q, P), in scaled units; with last_only only the last
        token's, (B, 1, Q, P), without the work the other tokens' outputs would cost after the last block's
        recurrence."""
        x = self.embed(tokens)
        for k, block in enumerate(self.blocks):
            x = block(x, last_only=last_only and k == len(self.blocks) - 1)
        out = self.head(self.out_norm(x))
        return out.unflatten(-1, (len(self.cfg.quantiles), self.cfg.patch_size))

    # ------------------------------------------------------------------ forecasting on tensors
    def window(self, context: torch.Tensor) -> torch.Tensor:
        """(B, T) -> (B, context_length): the last context_length values, left-padded with NaN."""
        L_ = self.cfg.context_length
        if context.shape[1] >= L_:
            return context[:, -L_:]
        return F.pad(context, (L_ - context.shape[1], 0), value=float("nan"))

    def tokenize(self, window: torch.Tensor):
        """(B, L) window -> tokens (B, L/P, 2P), loc (B, 1), scale (B, 1)."""
        observed = ~torch.isnan(window)
        n = observed.sum(-1, keepdim=True)
        filled = torch.where(observed, window, torch.zeros_like(window))
        loc = torch.where(n > 0, filled.sum(-1, keepdim=True) / n.clamp_min(1), torch.zeros_like(n, dtype=window.dtype))
        dev = torch.where(observed, (window - loc) ** 2, torch.zeros_like(window))
        scale = torch.where(n > 0, (dev.sum(-1, keepdim=True) / n.clamp_min(1)).sqrt(),
                            torch.ones_like(loc))
        scale = torch.where(scale == 0, loc.abs() + 1e-5, scale)
        z = torch.where(observed, (window - loc) / scale, torch.zeros_like(window))
        P = self.cfg.patch_size
        tokens = torch.cat([z.unflatten(-1, (-1, P)), observed.to(z.dtype).unflatten(-1, (-1, P))], dim=-1)
        return tokens, loc, scale

    def next_patch(self, context: torch.Tensor) -> torch.Tensor:
        """(B, T) context (NaN = missing) -> the next patch's quantiles (B, Q, P) in the data's units."""
        tokens, loc, scale = self.tokenize(self.window(context.float()))
        out = self(tokens, last_only=True)[:, -1]  # (B, Q, P)
        return out * scale.unsqueeze(-1) + loc.unsqueeze(-1)

    def rollout(self, context: torch.Tensor, prediction_length: int) -> torch.Tensor:
        """(B, T) context -> quantiles (B, Q, prediction_length), one patch at a time: each further patch
        appends a patch of NaN to the context and reads the window again. Differentiable (fine-tuning)."""
        P = self.cfg.patch_size
        context = context.float()
        patches = []
        while len(patches) * P < prediction_length:
            patch = self.next_patch(context)
            patches.append(patch)
            context = torch.cat([context, torch.full_like(patch[:, 0].detach(), float("nan"))], dim=-1)
        return torch.cat(patches, dim=-1)[..., :prediction_length]

    @torch.no_grad()
    def forecast(self, context: torch.Tensor, prediction_length: int) -> torch.Tensor:
        """(B, T) context (NaN = missing) -> quantiles (B, prediction_length, Q) in the data's units."""
        if isinstance(prediction_length, bool) or not isinstance(prediction_length, int) or prediction_length < 1:
            raise ValueError(f"prediction_length must be a positive int; got {prediction_length!r}")
        if context.dim() != 2:
            raise ValueError(f"context must be (B, T); got {tuple(context.shape)}")
        return self.rollout(context, prediction_length).transpose(1, 2)
