"""What the applications (forecast, classify, rl, lm, synthetic) share: learning-rate schedules, the
keep-the-best-weights callback, AdamW parameter groups, plots, thread control and command-line dispatch.
It sits above `xseq.nn` and below the applications; nothing here knows about a particular application."""
import importlib
from typing import TYPE_CHECKING

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


def __getattr__(name):  # PEP 562: a name is imported on first use, so `import xseq.common` costs nothing up front
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


__all__ = ["KeepBest", "optimizer_groups", "one_cycle", "warmup_cosine", "torch_threads"]
