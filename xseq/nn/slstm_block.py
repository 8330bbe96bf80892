"""The sLSTM block with post up-projection (paper Figure 5, App. B.4)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .. import ops
from .block_base import StepBlock
from .config import SLSTMLayerConfig
from .layers import CausalConv1d, GatedFFN, MultiHeadNorm, blockdiag_project, gate_bias_init_, small_init_


class SLSTMLayer(nn.Module):
    """x (optionally through a causal conv + swish) feeds the input and forget gates, x itself feeds the
    cell input z and output gate o, each through a block-diagonal projection per head (eqs 31-34's W x + b);
    the sLSTM's block-diagonal recurrence R adds the h_{t-1} part; the output is normed per head."""

    def __init__(self, d_model: int, cfg: SLSTMLayerConfig):
        super().__init__()
        self.cfg = cfg
        H = cfg.num_heads
        self.num_heads, self.head_dim = H, d_model // H
        Dh = self.head_dim
        self.conv = CausalConv1d(d_model, cfg.conv_kernel) if cfg.conv_kernel > 0 else None
        self.W_if = nn.Parameter(torch.empty(2, H, Dh, Dh))  # input and forget gates, from the conv branch
        self.W_zo = nn.Parameter(torch.empty(2, H, Dh, Dh))  # cell input and output gate, from x
        self.bias = nn.Parameter(torch.zeros(4, H, Dh))  # b_{i,f,z,o}
        self.R = nn.Parameter(torch.zeros(4, H, Dh, Dh))  # recurrent mixing starts off and is learned
        self.norm = MultiHeadNorm(H, Dh)
        small_init_(self.W_if, Dh)
        small_init_(self.W_zo, Dh)
        if cfg.recurrent_init == "normal":
            nn.init.normal_(self.R, std=Dh ** -0.5)
        gate_bias_init_(self.bias[0], self.bias[1], H, cfg.fgate_bias_range)

    def init_state(self, batch_size: int, device=None, dtype=None) -> dict[str, torch.Tensor]:
        shape = (batch_size, self.num_heads, self.head_dim)
        state = {"c": torch.zeros(shape, device=device), "n": torch.zeros(shape, device=device),
                 "m": torch.full(shape, float("-inf"), device=device), "h": torch.zeros(shape, device=device)}
        if self.conv is not None:
            state["conv"] = self.conv.init_state(batch_size, device, dtype)
        return state

    def _gates(self, x, x_conv):
        """(..., d) -> gx (..., 4, H, Dh): the W x + b part of the pre-activations, one batched product per
        head (H, N, Dh) @ (H, Dh, 2Dh) for each input; the result is a view whose memory is head-major,
        which is the order the fused CPU loop reads it in (each thread its own heads)."""
        H, Dh = self.num_heads, self.head_dim
        lead = x.shape[:-1]
        b_if, b_zo = self.bias.permute(1, 0, 2).reshape(H, 1, 4 * Dh).split(2 * Dh, dim=-1)
        g = torch.cat([blockdiag_project(x_conv, self.W_if, b_if), blockdiag_project(x, self.W_zo, b_zo)], dim=-1)
        return g.view(H, *lead, 4, Dh).movedim(0, -2)

    @staticmethod
    def _cell(state):
        return None if state is None else (state["c"], state["n"], state["m"], state["h"])

    def _conv_branch(self, x, state, conv):
        """The input of the i and f gates: swish(causal conv(x)), or x itself without a conv."""
        if self.conv is None:
            return x, {}
        x_conv, buffer = conv(x, None if state is None else state["conv"])
        return F.silu(x_conv), {"conv": buffer}

    def forward(self, x: torch.Tensor, state: dict | None = None):
        """x: (B, T, d_model). Returns y (B, T, d_model) and the new state dict."""
        x_conv, new = self._conv_branch(x, state, self.conv)
        h, cell = ops.slstm(self._gates(x, x_conv), self.R, self._cell(state), forget=self.cfg.forget,
                            grad_clip=self.cfg.recurrent_grad_clip, backend=self.cfg.backend)
        return self.norm(h), {**new, **cell._asdict()}

    def step(self, x: torch.Tensor, state: dict, validate: bool = True):
        """x: (B, d_model). Returns y (B, d_model) and the new state dict."""
        x_conv, new = self._conv_branch(x, state, self.conv.step if self.conv is not None else None)
        h, cell = ops.slstm_step(self._gates(x, x_conv), self.R, self._cell(state), forget=self.cfg.forget,
                                 backend=self.cfg.backend, validate=validate)
        return self.norm(h), {**new, **cell._asdict()}


class SLSTMBlock(StepBlock):
    """x + dropout(sLSTM(LN(x))), then x + dropout(gated MLP(LN(x))), the post up-projection."""

    def __init__(self, d_model: int, cfg: SLSTMLayerConfig, num_blocks: int, dropout: float = 0.0):
        super().__init__()
        self.norm = nn.LayerNorm(d_model, bias=False)
        self.layer = SLSTMLayer(d_model, cfg)
        self.__dict__["_cfg"] = cfg
        self.ffn_norm = nn.LayerNorm(d_model, bias=False)
        self.ffn = GatedFFN(d_model, cfg.ffn_size(d_model), num_blocks)
        self.drop = nn.Dropout(dropout)

    step_op = "slstm_block_step"  # the op of xseq.ops whose backends run step()

    @property
    def exp_forget(self) -> bool:
        return self.layer.cfg.forget == "exp"

    def forward(self, x, state=None):
        return self._residual(self.layer, x, state)

    def torch_step(self, x, state, validate: bool = True):
        """The step in PyTorch modules (autograd, any device and dtype): the backend "torch" of the op."""
        return self._residual(lambda x, s: self.layer.step(x, s, validate), x, state)

    def step_weights(self) -> tuple:
        """The weights a fused step reads, in its order: norm, conv weight and bias (None without a conv),
        W_if, W_zo, bias, R, head norm, feed-forward norm, up and down projections."""
        L, conv = self.layer, self.layer.conv
        return (self.norm.weight, None if conv is None else conv.weight, None if conv is None else conv.bias,
                L.W_if, L.W_zo, L.bias, L.R, L.norm.weight, self.ffn_norm.weight, self.ffn.up.weight,
                self.ffn.down.weight)

    def _residual(self, cell, x, state):
        y, state = cell(self.norm(x), state)
        x = x + self.drop(y)
        return x + self.drop(self.ffn(self.ffn_norm(x))), state
