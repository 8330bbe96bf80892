"""The language-model recipe as dataclasses: `model` (LMConfig), `data` (DataConfig) and `train` (TrainConfig).
A recipe YAML has exactly these three sections and maps onto them one-to-one; unknown keys are errors."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..nn.config import config_from_dict
from ..nn.lm import LMConfig, check_positive

TOKENIZERS = ("char", "byte", "gpt2")
STRATEGIES = ("auto", "ddp", "fsdp")
FSDP_SHARDING = ("FULL_SHARD", "SHARD_GRAD_OP", "NO_SHARD", "HYBRID_SHARD")
SAMPLING = ("random", "sequential")


@dataclass
class DataConfig:
    """A text corpus, tokenised once into memory-mapped token files (see xseq.lm.data)."""
    path: str | None = None  # a text file (or a folder of .txt files); resolved like xseq's other data sets
    val_path: str | None = None  # a separate held-out text; without it the last val_fraction of `path`
    val_fraction: float = 0.1
    tokenizer: str = "char"  # "char" (the corpus' characters), "byte" (UTF-8 bytes) or "gpt2" (BPE)
    tokenizer_dir: str | None = None  # gpt2: folder with encoder.json + vocab.bpe (or vocab.json + merges.txt)
    cache_dir: str | None = None  # where token files go (default: $XSEQ_CACHE_DIR or ~/.cache/xseq)
    sampling: str = "random"  # training windows: "random" offsets or "sequential" non-overlapping

    def __post_init__(self):
        if self.tokenizer not in TOKENIZERS:
            raise ValueError(f"DataConfig.tokenizer must be one of {TOKENIZERS}; got {self.tokenizer!r}")
        if self.sampling not in SAMPLING:
            raise ValueError(f"DataConfig.sampling must be one of {SAMPLING}; got {self.sampling!r}")
        if not 0.0 < self.val_fraction < 1.0:
            raise ValueError(f"DataConfig.val_fraction must be in (0, 1); got {self.val_fraction!r}")


@dataclass
class TrainConfig:
    """The training setup of paper D.2 by default: AdamW (0.9, 0.95), eps 1e-5, weight decay 0.1 (not on the
    embedding, biases and norm weights), linear warm-up over 750 steps then cosine decay to 10% of the peak
    learning rate, gradient clipping at norm 1, bf16 autocast with float32 weights."""
    context_length: int = 2048
    batch_size: int = 256  # global batch, in sequences per optimizer step
    micro_batch_size: int | None = None  # per device and forward pass (default: batch_size / devices)
    max_steps: int = 30_000  # optimizer steps; the schedule decays over them
    lr: float = 1e-3
    min_lr_ratio: float = 0.1
    warmup_steps: int = 750
    betas: tuple[float, float] = (0.9, 0.95)
    eps: float = 1e-5
    weight_decay: float = 0.1
    grad_clip: float = 1.0  # 0: no clipping
    precision: str = "bf16-mixed"  # a Lightning precision: "32-true", "bf16-mixed", ...
    accelerator: str = "auto"
    devices: int | str = "auto"
    num_nodes: int = 1
    strategy: str = "auto"  # "auto" (one device), "ddp" or "fsdp"
    fsdp_sharding: str = "SHARD_GRAD_OP"  # the paper's FSDP mode (NO_SHARD for small models)
    val_interval: int = 1000  # optimizer steps between validations, each followed by a checkpoint
    val_batches: int | None = None  # micro-batches per validation (None: the whole held-out split)
    keep_checkpoints: int = 1  # the newest k step checkpoints are kept (plus last.ckpt); -1 keeps all
    seed: int = 0
    deterministic: bool = False
    out_dir: str | None = None  # default runs/lm/<recipe name>

    def __post_init__(self):
        self.betas = tuple(self.betas)
        check_positive(self, "context_length", "batch_size", "max_steps", "num_nodes", "val_interval")
        if not isinstance(self.keep_checkpoints, int) or self.keep_checkpoints < -1 or self.keep_checkpoints == 0:
            raise ValueError(f"TrainConfig.keep_checkpoints must be a positive int or -1 (all); "
                             f"got {self.keep_checkpoints!r}")
        if self.micro_batch_size is not None:
            check_positive(self, "micro_batch_size")
        if not isinstance(self.warmup_steps, int) or self.warmup_steps < 0:
            raise ValueError(f"TrainConfig.warmup_steps must be an int >= 0; got {self.warmup_steps!r}")
        if not self.lr > 0:
            raise ValueError(f"TrainConfig.lr must be > 0; got {self.lr!r}")
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ValueError(f"TrainConfig.min_lr_ratio must be in [0, 1]; got {self.min_lr_ratio!r}")
        if len(self.betas) != 2 or not all(0.0 <= b < 1.0 for b in self.betas):
            raise ValueError(f"TrainConfig.betas must be two numbers in [0, 1); got {self.betas!r}")
        for name in ("eps", "weight_decay", "grad_clip"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"TrainConfig.{name} must be >= 0; got {getattr(self, name)!r}")
        if self.strategy not in STRATEGIES:
            raise ValueError(f"TrainConfig.strategy must be one of {STRATEGIES}; got {self.strategy!r}")
        if self.fsdp_sharding not in FSDP_SHARDING:
            raise ValueError(f"TrainConfig.fsdp_sharding must be one of {FSDP_SHARDING}; got {self.fsdp_sharding!r}")
        if self.val_batches is not None:
            check_positive(self, "val_batches")


@dataclass
class LMRecipe:
    model: LMConfig = field(default_factory=LMConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    name: str = "lm"

    def __post_init__(self):
        for key, cls in (("model", LMConfig), ("data", DataConfig), ("train", TrainConfig)):
            if isinstance(getattr(self, key), dict):
                setattr(self, key, config_from_dict(cls, getattr(self, key)))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any], name: str = "lm") -> "LMRecipe":
        if not isinstance(d, dict):
            raise ValueError(f"an LM recipe must be a mapping with model/data/train; got {type(d).__name__}")
        unknown = sorted(set(d) - {"model", "data", "train"})
        if unknown:
            raise ValueError(f"unknown LM recipe section(s) {unknown}; known: ['data', 'model', 'train']")
        return cls(model=d.get("model", {}), data=d.get("data", {}), train=d.get("train", {}), name=name)

    @classmethod
    def from_yaml(cls, path: str | Path) -> "LMRecipe":
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"recipe {str(path)!r} does not exist")
        return cls.from_dict(yaml.safe_load(path.read_text()) or {}, name=path.stem)

    def override(self, assignments: list[str]) -> "LMRecipe":
        """Apply `section.key=value` strings (value parsed as YAML), e.g. train.max_steps=20."""
        d = self.to_dict()
        for a in assignments:
            key, sep, value = a.partition("=")
            parts = key.split(".")
            if not sep or len(parts) < 2 or parts[0] not in ("model", "data", "train"):
                raise ValueError(f"override {a!r} must look like section.key=value with section model, data "
                                 f"or train (e.g. train.max_steps=20)")
            node = d
            for p in parts[:-1]:
                if not isinstance(node, dict) or p not in node:
                    raise ValueError(f"override {a!r}: no field {p!r} in the recipe")
                node = node[p]
            if parts[-1] not in node:
                raise ValueError(f"override {a!r}: no field {parts[-1]!r} in {'.'.join(parts[:-1])}")
            node[parts[-1]] = yaml.safe_load(value)
        d.pop("name")
        return LMRecipe.from_dict(d, name=self.name)
