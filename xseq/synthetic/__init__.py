"""xseq.synthetic: the paper's capability tests (D.1): formal languages, MQAR, nearest-neighbour search."""
import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the same imports, eager, for type checkers and tests/importgraph.py
    from .config import EvalConfig, SyntheticRecipe, SynTrainConfig, TaskConfig
    from .formal import TASKS, Batch, get_task
    from .models import CausalTransformer, build_model
    from .recall import mqar, nearest_neighbour

_LAZY = {
    "EvalConfig": ".config",
    "SyntheticRecipe": ".config",
    "SynTrainConfig": ".config",
    "TaskConfig": ".config",
    "TASKS": ".formal",
    "Batch": ".formal",
    "get_task": ".formal",
    "CausalTransformer": ".models",
    "build_model": ".models",
    "mqar": ".recall",
    "nearest_neighbour": ".recall",
}


def __getattr__(name):  # PEP 562: a name is imported on first use, so `import xseq.synthetic` costs nothing up front
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


__all__ = ["TASKS", "Batch", "get_task", "mqar", "nearest_neighbour", "build_model", "CausalTransformer",
           "SyntheticRecipe", "TaskConfig", "SynTrainConfig", "EvalConfig"]
