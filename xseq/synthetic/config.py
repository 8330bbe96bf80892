"""A synthetic-task recipe: `task`, `models` (name -> model spec), `train` and `eval` sections, mapped onto
these dataclasses one-to-one; unknown keys are errors."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..nn.config import config_from_dict
from .formal import TASKS

TASK_KINDS = ("formal", "mqar")


@dataclass
class TaskConfig:
    kind: str = "formal"  # "formal" (a D.1.1 task) or "mqar" (D.1.2)
    name: str = "parity"  # formal: the task (see xseq.synthetic.formal.TASKS)
    train_lengths: tuple[int, int] = (1, 40)  # formal: task lengths n drawn uniformly for training
    eval_lengths: tuple[int, int] = (40, 256)  # formal: ... and for evaluation (extrapolation)
    seq_len: int = 256  # mqar: context length
    num_kv: int = 16  # mqar: key-value pairs
    vocab_size: int = 8192  # mqar

    def __post_init__(self):
        self.train_lengths, self.eval_lengths = tuple(self.train_lengths), tuple(self.eval_lengths)
        if self.kind not in TASK_KINDS:
            raise ValueError(f"task.kind must be one of {TASK_KINDS}; got {self.kind!r}")
        if self.kind == "formal" and self.name not in TASKS:
            raise ValueError(f"task.name must be one of {sorted(TASKS)}; got {self.name!r}")
        for key in ("train_lengths", "eval_lengths"):
            v = getattr(self, key)
            if len(v) != 2 or not all(isinstance(x, int) for x in v) or not 1 <= v[0] <= v[1]:
                raise ValueError(f"task.{key} must be [lo, hi] ints with 1 <= lo <= hi; got {list(v)!r}")

    @property
    def label(self) -> str:
        return self.name if self.kind == "formal" else f"mqar_{self.seq_len}_{self.num_kv}"


@dataclass
class SynTrainConfig:
    steps: int = 5000
    batch_size: int = 64
    lr: float = 1e-3
    min_lr: float = 1e-5  # cosine annealing target (D.1.1)
    warmup_fraction: float = 0.1
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.95)
    grad_clip: float = 1.0
    seed: int = 0
    threads: int | None = None  # torch threads (None: torch's default)

    def __post_init__(self):
        self.betas = tuple(self.betas)
        for key in ("steps", "batch_size"):
            v = getattr(self, key)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"train.{key} must be a positive int; got {v!r}")
        if not self.lr > 0 or not 0 <= self.min_lr <= self.lr:
            raise ValueError(f"train.lr must be > 0 and train.min_lr in [0, lr]; got {self.lr!r}, {self.min_lr!r}")
        if not 0 <= self.warmup_fraction < 1:
            raise ValueError(f"train.warmup_fraction must be in [0, 1); got {self.warmup_fraction!r}")


@dataclass
class EvalConfig:
    samples: int = 512
    batch_size: int = 64
    seed: int = 12345  # evaluation samples never overlap training draws (different stream)


@dataclass
class SyntheticRecipe:
    task: TaskConfig = field(default_factory=TaskConfig)
    models: dict = field(default_factory=dict)  # name -> model spec (see xseq.synthetic.models.build_model)
    train: SynTrainConfig = field(default_factory=SynTrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    name: str = "synthetic"

    def __post_init__(self):
        for key, cls in (("task", TaskConfig), ("train", SynTrainConfig), ("eval", EvalConfig)):
            if isinstance(getattr(self, key), dict):
                setattr(self, key, config_from_dict(cls, getattr(self, key)))
        if not isinstance(self.models, dict) or not self.models:
            raise ValueError("models must be a non-empty mapping of name -> model spec")

    @classmethod
    def from_yaml(cls, path) -> "SyntheticRecipe":
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"recipe {str(path)!r} does not exist")
        d = yaml.safe_load(path.read_text()) or {}
        unknown = sorted(set(d) - {"task", "models", "train", "eval"})
        if unknown:
            raise ValueError(f"unknown synthetic recipe section(s) {unknown}; known: task, models, train, eval")
        return cls(**d, name=path.stem)

    def replace_train(self, **kw) -> "SyntheticRecipe":
        return dataclasses.replace(self, train=dataclasses.replace(self.train, **kw))

    def replace_eval(self, **kw) -> "SyntheticRecipe":
        return dataclasses.replace(self, eval=dataclasses.replace(self.eval, **kw))
