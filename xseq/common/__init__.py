"""What the applications (forecast, classify, rl, lm, synthetic) share: learning-rate schedules, the
keep-the-best-weights callback, AdamW parameter groups, plots, thread control and command-line dispatch.
It sits above `xseq.nn` and below the applications; nothing here knows about a particular application."""
from typing import TYPE_CHECKING

from ..lazy import attach

if TYPE_CHECKING:  # the same imports, eager, for type checkers and tests/importgraph.py
    from .callbacks import KeepBest
    from .optim import optimizer_groups
    from .schedules import one_cycle, warmup_cosine
    from .threads import torch_threads

_LAZY = {
    "KeepBest": ".callbacks",
    "optimizer_groups": ".optim",
    "one_cycle": ".schedules",
    "warmup_cosine": ".schedules",
    "torch_threads": ".threads",
}


__getattr__, __dir__ = attach(__name__, _LAZY)

__all__ = ["KeepBest", "optimizer_groups", "one_cycle", "warmup_cosine", "torch_threads"]
