"""xseq.synthetic: the paper's capability tests (D.1): formal languages, MQAR, nearest-neighbour search."""
from .config import EvalConfig, SyntheticRecipe, SynTrainConfig, TaskConfig
from .formal import TASKS, Batch, get_task
from .models import CausalTransformer, build_model
from .recall import mqar, nearest_neighbour

__all__ = ["TASKS", "Batch", "get_task", "mqar", "nearest_neighbour", "build_model", "CausalTransformer",
           "SyntheticRecipe", "TaskConfig", "SynTrainConfig", "EvalConfig"]
