"""xseq.synthetic: the paper's capability tests (D.1): formal languages, MQAR, nearest-neighbour search."""
from typing import TYPE_CHECKING

from ..lazy import attach

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


__getattr__, __dir__ = attach(__name__, _LAZY)

__all__ = ["TASKS", "Batch", "get_task", "mqar", "nearest_neighbour", "build_model", "CausalTransformer",
           "SyntheticRecipe", "TaskConfig", "SynTrainConfig", "EvalConfig"]
