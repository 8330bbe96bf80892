"""TiRex's configuration as a dataclass, and the reading of the `hyper_parameters` of a TiRex checkpoint into it.

Facts of the released model (NX-AI's TiRex, read from the public tirex-ts package; no code taken): patches of
32 values, 9 quantiles 0.1 ... 0.9, 12 pre-norm sLSTM blocks of width 512 with 4 heads, a SwiGLU feed-forward of
round_up(512 * ffn_proj_factor, 64) units, input and output MLPs of 2048 hidden units, a 2048-value context."""
from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass

# model_config fields of a checkpoint, and the block_kwargs fields the model reads
_TOP = {"input_patch_size", "output_patch_size", "quantiles", "block_kwargs", "input_ff_dim"}
_BLOCK = {"embedding_dim", "num_heads", "num_blocks", "ffn_proj_factor", "num_states", "num_gates"}


@dataclass(frozen=True)
class TiRexConfig:
    patch_size: int = 32
    quantiles: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
    num_blocks: int = 12
    d_model: int = 512
    num_heads: int = 4
    ffn_proj_factor: float = 2.6667
    input_ff_dim: int = 2048
    context_length: int = 2048  # the training context: every forecast reads the last this many values

    def __post_init__(self):
        for name in ("patch_size", "num_blocks", "d_model", "num_heads", "input_ff_dim", "context_length"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"TiRexConfig.{name} must be a positive int; got {v!r}")
        if self.d_model % self.num_heads:
            raise ValueError(f"TiRexConfig.num_heads ({self.num_heads}) must divide d_model ({self.d_model})")
        if self.context_length % self.patch_size:
            raise ValueError(f"TiRexConfig.context_length ({self.context_length}) must be a multiple of "
                             f"patch_size ({self.patch_size})")
        qs = tuple(float(q) for q in self.quantiles)
        if not qs or any(not 0 < q < 1 for q in qs) or list(qs) != sorted(set(qs)) or 0.5 not in qs:
            raise ValueError(f"TiRexConfig.quantiles must be ascending distinct levels in (0, 1) that include "
                             f"0.5; got {self.quantiles!r}")
        object.__setattr__(self, "quantiles", qs)
        if not self.ffn_proj_factor > 0:
            raise ValueError(f"TiRexConfig.ffn_proj_factor must be > 0; got {self.ffn_proj_factor!r}")

    @property
    def head_dim(self) -> int:
        return self.d_model // self.num_heads

    @property
    def ffn_dim(self) -> int:
        """d_model * ffn_proj_factor rounded up to a multiple of 64 as tirex-ts rounds it: floor((x + 63) / 64)
        * 64, which for a fractional x a hair above a multiple (96 * 2.6667 = 256.003) stays at that multiple."""
        return int((self.d_model * self.ffn_proj_factor + 63) // 64 * 64)

    def to_hyper_parameters(self) -> dict:
        """The checkpoint's `hyper_parameters` for this configuration (tirex-ts's layout)."""
        return {"model_config": {"input_patch_size": self.patch_size, "output_patch_size": self.patch_size,
                                 "quantiles": list(self.quantiles), "input_ff_dim": self.input_ff_dim,
                                 "block_kwargs": {"embedding_dim": self.d_model, "num_heads": self.num_heads,
                                                  "num_blocks": self.num_blocks,
                                                  "ffn_proj_factor": self.ffn_proj_factor}},
                "train_ctx_len": self.context_length}

    def to_dict(self) -> dict:
        d = asdict(self)
        d["quantiles"] = list(self.quantiles)
        return d


def config_from_hyper_parameters(hp, source: str = "checkpoint") -> TiRexConfig:
    """Read a checkpoint's `hyper_parameters`; a field xseq does not implement is a ValueError naming it.
    Extra block_kwargs fields, which tirex-ts itself ignores, are reported in one warning."""
    if not isinstance(hp, dict) or "model_config" not in hp:
        raise ValueError(f"{source}: hyper_parameters must hold 'model_config' (and 'train_ctx_len'); got "
                         f"{sorted(hp) if isinstance(hp, dict) else type(hp).__name__}")
    mc = hp["model_config"]
    if not isinstance(mc, dict):
        raise ValueError(f"{source}: model_config must be a dict; got {type(mc).__name__}")
    unknown = sorted(set(mc) - _TOP)
    if unknown:
        raise ValueError(f"{source}: model_config has field(s) {unknown} that xseq's TiRex does not support "
                         f"(known: {sorted(_TOP)})")
    missing = sorted(_TOP - set(mc))
    if missing:
        raise ValueError(f"{source}: model_config lacks {missing}")
    if mc["input_patch_size"] != mc["output_patch_size"]:
        raise ValueError(f"{source}: input_patch_size ({mc['input_patch_size']}) != output_patch_size "
                         f"({mc['output_patch_size']}); only equal patch sizes are supported")
    bk = mc["block_kwargs"]
    if not isinstance(bk, dict):
        raise ValueError(f"{source}: block_kwargs must be a dict; got {type(bk).__name__}")
    for name in ("embedding_dim", "num_heads", "num_blocks"):
        if name not in bk:
            raise ValueError(f"{source}: block_kwargs lacks {name!r}")
    for name in ("num_states", "num_gates"):
        if bk.get(name, 4) != 4:
            raise ValueError(f"{source}: block_kwargs.{name} = {bk[name]!r}; the sLSTM has 4")
    extra = sorted(set(bk) - _BLOCK)
    if extra:
        warnings.warn(f"{source}: block_kwargs field(s) {extra} are not read by the model (tirex-ts ignores them "
                      f"too)", UserWarning, stacklevel=3)
    ctx = hp.get("train_ctx_len")
    if ctx is None:
        raise ValueError(f"{source}: hyper_parameters lacks 'train_ctx_len' (the training context length)")
    try:
        return TiRexConfig(patch_size=mc["input_patch_size"], quantiles=tuple(mc["quantiles"]),
                           num_blocks=bk["num_blocks"], d_model=bk["embedding_dim"], num_heads=bk["num_heads"],
                           ffn_proj_factor=bk.get("ffn_proj_factor", 2.6667), input_ff_dim=mc["input_ff_dim"],
                           context_length=ctx)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{source}: {e}") from None
