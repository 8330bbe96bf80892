"""What the applications (forecast, classify, rl, lm, synthetic) share: learning-rate schedules, the
keep-the-best-weights callback, AdamW parameter groups, plots, thread control and command-line dispatch.
It sits above `xseq.nn` and below the applications; nothing here knows about a particular application."""
from .callbacks import KeepBest
from .optim import optimizer_groups
from .schedules import one_cycle, warmup_cosine
from .threads import torch_threads

__all__ = ["KeepBest", "optimizer_groups", "one_cycle", "warmup_cosine", "torch_threads"]
