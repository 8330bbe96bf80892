"""xseq.lm: xLSTM language models (paper D.2) trained from one recipe through Lightning."""
import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the same imports, eager, for type checkers and tests/importgraph.py
    from .checkpoint import load_tokenizer
    from .config import DataConfig, LMConfig, LMRecipe, TrainConfig
    from .data import TokenCorpus, prepare
    from .evaluate import perplexity
    from .generate import generate, greedy_by_forward
    from .model import XLSTMLM, count_parameters, optimizer_groups
    from .tokenizers import ByteTokenizer, CharTokenizer, GPT2Tokenizer
    from .training import LMModule, load_model, train

_LAZY = {
    "load_tokenizer": ".checkpoint",
    "DataConfig": ".config",
    "LMConfig": ".config",
    "LMRecipe": ".config",
    "TrainConfig": ".config",
    "TokenCorpus": ".data",
    "prepare": ".data",
    "perplexity": ".evaluate",
    "generate": ".generate",
    "greedy_by_forward": ".generate",
    "XLSTMLM": ".model",
    "count_parameters": ".model",
    "optimizer_groups": ".model",
    "ByteTokenizer": ".tokenizers",
    "CharTokenizer": ".tokenizers",
    "GPT2Tokenizer": ".tokenizers",
    "LMModule": ".training",
    "load_model": ".training",
    "train": ".training",
}


def __getattr__(name):  # PEP 562: a name is imported on first use, so `import xseq.lm` costs nothing up front
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


__all__ = ["LMConfig", "DataConfig", "TrainConfig", "LMRecipe", "XLSTMLM", "count_parameters", "optimizer_groups",
           "prepare", "TokenCorpus", "train", "load_model", "load_tokenizer", "LMModule", "generate",
           "greedy_by_forward", "perplexity", "CharTokenizer", "ByteTokenizer", "GPT2Tokenizer"]
