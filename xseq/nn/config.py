"""Config dataclasses for the xLSTM encoder; a recipe YAML maps onto them one-to-one (see `from_dict`)."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

BLOCK_TYPES = ("m", "s")
_MODES = ("auto", "parallel", "chunkwise", "recurrent")


def _positive_int(obj, name: str) -> None:
    value = getattr(obj, name)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{type(obj).__name__}.{name} must be a positive int; got {value!r}")


@dataclass
class MLSTMLayerConfig:
    """The mLSTM block, pre up-projection (paper Figure 6)."""
    num_heads: int = 4  # heads of the matrix memory; head size = inner size / num_heads
    proj_factor: float = 2.0  # up-projection factor: inner size = round(proj_factor * d_model)
    conv_kernel: int = 4  # causal depthwise conv feeding q and k
    qkv_block_size: int = 4  # block size of the block-diagonal q, k, v projections
    mode: str = "auto"  # mlstm op mode: auto, parallel, chunkwise, recurrent
    chunk_size: int = 64  # chunk length of the chunkwise mode
    backend: str = "auto"  # kernel backend: auto or a registered name ("torch", ...)

    def inner_size(self, d_model: int) -> int:
        return int(round(self.proj_factor * d_model))

    def validate(self, d_model: int) -> None:
        for name in ("num_heads", "conv_kernel", "qkv_block_size", "chunk_size"):
            _positive_int(self, name)
        if not self.proj_factor > 0:
            raise ValueError(f"MLSTMLayerConfig.proj_factor must be > 0; got {self.proj_factor!r}")
        inner = self.inner_size(d_model)
        if inner % self.num_heads:
            raise ValueError(f"MLSTMLayerConfig.num_heads ({self.num_heads}) must divide the inner size "
                             f"proj_factor * d_model = {inner}")
        if inner % self.qkv_block_size:
            raise ValueError(f"MLSTMLayerConfig.qkv_block_size ({self.qkv_block_size}) must divide the inner "
                             f"size proj_factor * d_model = {inner}")
        if self.mode not in _MODES:
            raise ValueError(f"MLSTMLayerConfig.mode must be one of {_MODES}; got {self.mode!r}")


@dataclass
class SLSTMLayerConfig:
    """The sLSTM block, post up-projection (paper Figure 5): sLSTM, then a gated GeLU MLP."""
    num_heads: int = 4  # heads (block-diagonal recurrence); head size = d_model / num_heads
    conv_kernel: int = 4  # causal conv + swish feeding the input and forget gates; 0 = no conv
    forget: str = "sigmoid"  # forget gate activation: "sigmoid" or "exp" (eq 6)
    ffn_factor: float = 1.3  # gated MLP inner size = ffn_factor * d_model ...
    ffn_round_to: int = 64  # ... rounded up to a multiple of this
    backend: str = "auto"  # kernel backend: auto or a registered name ("torch", ...)
    fgate_bias_range: tuple[float, float] = (3.0, 6.0)  # forget-gate biases spread over the heads (Table 6)
    recurrent_init: str = "zeros"  # R at init: "zeros" (mixing is learned) or "normal" N(0, 1/head_dim)
    recurrent_grad_clip: float | None = None  # bound on the gradient reaching h through R (App. B.4: 10); None: off

    def __post_init__(self):
        self.fgate_bias_range = tuple(self.fgate_bias_range)

    def ffn_size(self, d_model: int) -> int:
        return int(math.ceil(self.ffn_factor * d_model / self.ffn_round_to) * self.ffn_round_to)

    def validate(self, d_model: int) -> None:
        for name in ("num_heads", "ffn_round_to"):
            _positive_int(self, name)
        if not isinstance(self.conv_kernel, int) or self.conv_kernel < 0:
            raise ValueError(f"SLSTMLayerConfig.conv_kernel must be an int >= 0; got {self.conv_kernel!r}")
        if d_model % self.num_heads:
            raise ValueError(f"SLSTMLayerConfig.num_heads ({self.num_heads}) must divide d_model ({d_model})")
        if self.forget not in ("sigmoid", "exp"):
            raise ValueError(f"SLSTMLayerConfig.forget must be 'sigmoid' or 'exp'; got {self.forget!r}")
        clip = self.recurrent_grad_clip
        if clip is not None and (isinstance(clip, bool) or not isinstance(clip, (int, float)) or not clip > 0):
            raise ValueError(
                f"SLSTMLayerConfig.recurrent_grad_clip must be None or a positive number; got {clip!r}")
        if not self.ffn_factor > 0:
            raise ValueError(f"SLSTMLayerConfig.ffn_factor must be > 0; got {self.ffn_factor!r}")
        if self.recurrent_init not in ("zeros", "normal"):
            raise ValueError(f"SLSTMLayerConfig.recurrent_init must be 'zeros' or 'normal'; "
                             f"got {self.recurrent_init!r}")
        r = self.fgate_bias_range
        if len(r) != 2 or not all(isinstance(v, (int, float)) for v in r) or r[0] > r[1]:
            raise ValueError(f"SLSTMLayerConfig.fgate_bias_range must be [lo, hi] with lo <= hi; got {list(r)!r}")


@dataclass
class XLSTMConfig:
    """A stack of pre-LayerNorm residual xLSTM blocks with a final LayerNorm; d_model in, d_model out.

    The layout is either a string of block types ("m" = mLSTM, "s" = sLSTM), e.g. "mmms", or
    `num_blocks` with the 0-based sLSTM positions in `slstm_at` (the paper's D.2 notation)."""
    d_model: int = 128
    num_blocks: int | None = None
    layout: str | None = None
    slstm_at: list[int] = field(default_factory=list)
    mlstm: MLSTMLayerConfig = field(default_factory=MLSTMLayerConfig)
    slstm: SLSTMLayerConfig = field(default_factory=SLSTMLayerConfig)
    dropout: float = 0.0  # on each block's output, before the residual add

    def __post_init__(self):
        if isinstance(self.mlstm, dict):
            self.mlstm = config_from_dict(MLSTMLayerConfig, self.mlstm)
        if isinstance(self.slstm, dict):
            self.slstm = config_from_dict(SLSTMLayerConfig, self.slstm)
        self.slstm_at = list(self.slstm_at)
        self.validate()

    @property
    def block_types(self) -> list[str]:
        if self.layout is not None:
            return list(self.layout)
        at = set(self.slstm_at)
        return ["s" if i in at else "m" for i in range(self.num_blocks)]

    def validate(self) -> None:
        _positive_int(self, "d_model")
        if self.layout is not None:
            if not isinstance(self.layout, str) or not self.layout:
                raise ValueError(f"XLSTMConfig.layout must be a non-empty string of 'm'/'s'; got {self.layout!r}")
            unknown = sorted(set(self.layout) - set(BLOCK_TYPES))
            if unknown:
                raise ValueError(f"XLSTMConfig.layout has unknown block type(s) {unknown}; "
                                 f"use 'm' (mLSTM) and 's' (sLSTM), e.g. 'mmms'")
            if self.slstm_at:
                raise ValueError("XLSTMConfig.slstm_at and XLSTMConfig.layout are exclusive; give one of them")
            if self.num_blocks is not None and self.num_blocks != len(self.layout):
                raise ValueError(f"XLSTMConfig.num_blocks ({self.num_blocks}) disagrees with the layout "
                                 f"{self.layout!r} of {len(self.layout)} blocks")
        else:
            if self.num_blocks is None:
                raise ValueError("XLSTMConfig needs num_blocks (with optional slstm_at) or layout")
            _positive_int(self, "num_blocks")
            for i in self.slstm_at:
                if not isinstance(i, int) or not 0 <= i < self.num_blocks:
                    raise ValueError(f"XLSTMConfig.slstm_at entries must be block indices in "
                                     f"[0, {self.num_blocks}); got {i!r}")
            if len(set(self.slstm_at)) != len(self.slstm_at):
                raise ValueError(f"XLSTMConfig.slstm_at has duplicates: {self.slstm_at}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"XLSTMConfig.dropout must be in [0, 1); got {self.dropout!r}")
        types = self.block_types
        if "m" in types:
            self.mlstm.validate(self.d_model)
        if "s" in types:
            self.slstm.validate(self.d_model)

    @property
    def n_blocks(self) -> int:
        return len(self.block_types)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "XLSTMConfig":
        return config_from_dict(cls, d)


def config_from_dict(cls, d: dict[str, Any]):
    """Build a config dataclass from a mapping (a recipe section); unknown keys are an error, not ignored."""
    if not isinstance(d, dict):
        raise ValueError(f"{cls.__name__} must be given as a mapping; got {type(d).__name__}")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} field(s) {unknown}; known: {sorted(known)}")
    return cls(**d)
