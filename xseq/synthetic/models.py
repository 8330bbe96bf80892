"""Sequence models for the synthetic tasks: two-block xLSTMs (the LM model of xseq.lm: embedding, encoder,
head) and, for comparison, a small causal Transformer of the Llama kind (pre-RMSNorm blocks, rotary
positions, so that it can be run past its training length, and a SwiGLU MLP)."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..nn.config import XLSTMConfig
from ..nn.lm import XLSTMLM, LMConfig

KINDS = ("xlstm", "transformer")


def build_model(spec: dict, vocab_size: int) -> nn.Module:
    """spec: {kind: xlstm, encoder: {XLSTMConfig fields}, tie_weights: false} or {kind: transformer, d_model,
    num_heads, num_layers, tie_weights: false}. Both expose hidden(x) -> (B, T, d) and head(h) -> logits;
    tie_weights shares the embedding matrix with the head."""
    spec = dict(spec)
    kind = spec.pop("kind", None)
    if kind == "xlstm":
        enc = spec.pop("encoder", None)
        tie = spec.pop("tie_weights", False)
        if spec or not isinstance(enc, dict):
            raise ValueError(f"an xlstm model spec has the keys kind, encoder (an XLSTMConfig mapping) and "
                             f"tie_weights; got extra {sorted(spec)}" if spec
                             else "an xlstm model spec needs encoder: {...}")
        return TokenXLSTM(LMConfig(vocab_size=vocab_size, tie_weights=tie, encoder=XLSTMConfig.from_dict(enc)))
    if kind == "transformer":
        known = {"d_model", "num_heads", "num_layers", "tie_weights"}
        if set(spec) - known:
            raise ValueError(f"unknown transformer spec key(s) {sorted(set(spec) - known)}; known: {sorted(known)}")
        return CausalTransformer(vocab_size, **spec)
    raise ValueError(f"model kind must be one of {KINDS}; got {kind!r}")


class TokenXLSTM(XLSTMLM):
    def hidden(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(self.embedding(x))[0]


class RotaryAttention(nn.Module):
    def __init__(self, d_model: int, num_heads: int):
        super().__init__()
        if d_model % num_heads or (d_model // num_heads) % 2:
            raise ValueError(f"num_heads ({num_heads}) must divide d_model ({d_model}) into even head sizes")
        self.h, self.dh = num_heads, d_model // num_heads
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=False)
        self.out = nn.Linear(d_model, d_model, bias=False)
        inv_freq = 1.0 / 10000 ** (torch.arange(0, self.dh, 2).float() / self.dh)
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    def rotate(self, x):  # x (B, H, T, Dh)
        t = torch.arange(x.shape[2], device=x.device, dtype=torch.float32)
        angle = torch.outer(t, self.inv_freq)
        cos, sin = angle.cos().to(x.dtype), angle.sin().to(x.dtype)
        x1, x2 = x[..., 0::2], x[..., 1::2]
        return torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1).flatten(-2)

    def forward(self, x):
        B, T, _ = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.h, self.dh).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(self.rotate(q), self.rotate(k), v, is_causal=True)
        return self.out(y.transpose(1, 2).reshape(B, T, -1))


class Block(nn.Module):
    def __init__(self, d_model: int, num_heads: int):
        super().__init__()
        self.norm1, self.norm2 = nn.RMSNorm(d_model), nn.RMSNorm(d_model)
        self.attn = RotaryAttention(d_model, num_heads)
        inner = int(math.ceil(8 * d_model / 3 / 64) * 64)
        self.up = nn.Linear(d_model, 2 * inner, bias=False)
        self.down = nn.Linear(inner, d_model, bias=False)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        gate, up = self.up(self.norm2(x)).chunk(2, dim=-1)
        return x + self.down(F.silu(gate) * up)


class CausalTransformer(nn.Module):
    def __init__(self, vocab_size: int, d_model: int = 64, num_heads: int = 4, num_layers: int = 2,
                 tie_weights: bool = False):
        super().__init__()
        if not isinstance(tie_weights, bool):
            raise ValueError(f"tie_weights must be a bool; got {tie_weights!r}")
        self.vocab_size = vocab_size
        self.embedding = nn.Embedding(vocab_size, d_model)
        self.blocks = nn.ModuleList(Block(d_model, num_heads) for _ in range(num_layers))
        self.norm = nn.RMSNorm(d_model)
        self.head = nn.Linear(d_model, vocab_size, bias=False)
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=0.02)
        if tie_weights:
            self.head.weight = self.embedding.weight

    def hidden(self, x):
        h = self.embedding(x)
        for blk in self.blocks:
            h = blk(h)
        return self.norm(h)
