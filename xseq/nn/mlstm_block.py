"""The mLSTM block with pre up-projection (paper Figure 6, App. B.4)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .. import ops
from .block_base import StepBlock
from .config import MLSTMLayerConfig
from .layers import CausalConv1d, HeadwiseLinear, MultiHeadNorm, gate_bias_init_, scaled_init_, small_init_


class MLSTMLayer(nn.Module):
    """up-project x (factor 2) into the cell branch and the output-gate branch z; the cell branch goes through
    a causal conv + swish to give q and k, while v is taken before the conv; i and f are linear in [q, k, v]
    (one scalar per head); the mLSTM output is normed per head, plus a learnable skip of the conv branch,
    gated by swish(z), and down-projected."""

    def __init__(self, d_model: int, cfg: MLSTMLayerConfig, num_blocks: int):
        super().__init__()
        self.cfg = cfg
        inner = cfg.inner_size(d_model)
        self.inner, self.num_heads, self.head_dim = inner, cfg.num_heads, inner // cfg.num_heads
        self.up = nn.Linear(d_model, 2 * inner, bias=False)
        self.conv = CausalConv1d(inner, cfg.conv_kernel)
        n_qkv = inner // cfg.qkv_block_size
        self.q_proj = HeadwiseLinear(inner, inner, n_qkv)
        self.k_proj = HeadwiseLinear(inner, inner, n_qkv)
        self.v_proj = HeadwiseLinear(inner, inner, n_qkv)
        self.igate = nn.Linear(3 * inner, cfg.num_heads)  # eq 13
        self.fgate = nn.Linear(3 * inner, cfg.num_heads)  # eq 14
        self.norm = MultiHeadNorm(cfg.num_heads, self.head_dim)
        self.skip = nn.Parameter(torch.ones(inner))
        self.down = nn.Linear(inner, d_model, bias=False)
        small_init_(self.up.weight, d_model)
        scaled_init_(self.down.weight, inner, num_blocks)
        nn.init.zeros_(self.igate.weight)
        nn.init.zeros_(self.fgate.weight)
        gate_bias_init_(self.igate.bias, self.fgate.bias, cfg.num_heads)

    def init_state(self, batch_size: int, device=None, dtype=None) -> dict[str, torch.Tensor]:
        B, H, D = batch_size, self.num_heads, self.head_dim
        return {"C": torch.zeros(B, H, D, D, device=device), "n": torch.zeros(B, H, D, device=device),
                "m": torch.full((B, H), float("-inf"), device=device),
                "conv": self.conv.init_state(B, device, dtype)}

    def _project(self, x_inner, x_conv):
        q, k, v = self.q_proj(x_conv), self.k_proj(x_conv), self.v_proj(x_inner)  # eq 12
        qkv = torch.cat([q, k, v], dim=-1)
        return q, k, v, self.igate(qkv), self.fgate(qkv)

    def _output(self, h, x_conv, z):
        """h: (..., H, Dh) from the cell."""
        h = self.norm(h) + self.skip * x_conv
        return self.down(h * F.silu(z))  # externalised output gate (eq 15's role)

    def forward(self, x: torch.Tensor, state: dict | None = None):
        """x: (B, T, d_model). Returns y (B, T, d_model) and the new state dict."""
        B, T, _ = x.shape
        x_inner, z = self.up(x).chunk(2, dim=-1)
        x_conv, conv_state = self.conv(x_inner, None if state is None else state["conv"])
        x_conv = F.silu(x_conv)
        q, k, v, ig, fg = self._project(x_inner, x_conv)

        def heads(t):  # (B, T, inner) -> (B, H, T, Dh)
            return t.view(B, T, self.num_heads, self.head_dim).transpose(1, 2)

        cell = None if state is None else (state["C"], state["n"], state["m"])
        h, cell = ops.mlstm(heads(q), heads(k), heads(v), ig.transpose(1, 2), fg.transpose(1, 2), cell,
                            mode=self.cfg.mode, chunk_size=self.cfg.chunk_size, backend=self.cfg.backend)
        y = self._output(h.transpose(1, 2), x_conv, z)
        return y, {"C": cell.C, "n": cell.n, "m": cell.m, "conv": conv_state}

    def step(self, x: torch.Tensor, state: dict, validate: bool = True):
        """x: (B, d_model). Returns y (B, d_model) and the new state dict."""
        B = x.shape[0]
        x_inner, z = self.up(x).chunk(2, dim=-1)
        x_conv, conv_state = self.conv.step(x_inner, state["conv"])
        x_conv = F.silu(x_conv)
        q, k, v, ig, fg = self._project(x_inner, x_conv)
        shape = (B, self.num_heads, self.head_dim)
        h, cell = ops.mlstm_step(q.view(shape), k.view(shape), v.view(shape), ig, fg,
                                 (state["C"], state["n"], state["m"]), backend=self.cfg.backend,
                                 validate=validate)
        y = self._output(h, x_conv, z)
        return y, {"C": cell.C, "n": cell.n, "m": cell.m, "conv": conv_state}


class MLSTMBlock(StepBlock):
    """Pre-LayerNorm residual block around an MLSTMLayer: x + dropout(layer(LN(x)))."""

    def __init__(self, d_model: int, cfg: MLSTMLayerConfig, num_blocks: int, dropout: float = 0.0):
        super().__init__()
        self.norm = nn.LayerNorm(d_model, bias=False)
        self.layer = MLSTMLayer(d_model, cfg, num_blocks)
        self.__dict__["_cfg"] = cfg
        self.drop = nn.Dropout(dropout)

    def forward(self, x, state=None):
        y, state = self.layer(self.norm(x), state)
        return x + self.drop(y), state

    step_op = "mlstm_block_step"  # the op of xseq.ops whose backends run step()

    def torch_step(self, x, state, validate: bool = True):
        """The step in PyTorch modules (autograd, any device and dtype): the backend "torch" of the op."""
        y, state = self.layer.step(self.norm(x), state, validate)  # same residual as forward, one time step
        return x + self.drop(y), state

    def step_weights(self) -> tuple:
        """The weights a fused step reads, in its order: norm, up, conv weight and bias, q, k, v, igate
        weight and bias, fgate weight and bias, head norm, skip, down."""
        L = self.layer
        return (self.norm.weight, L.up.weight, L.conv.weight, L.conv.bias, L.q_proj.weight, L.k_proj.weight,
                L.v_proj.weight, L.igate.weight, L.igate.bias, L.fgate.weight, L.fgate.bias, L.norm.weight, L.skip,
                L.down.weight)
