"""xseq.lm: xLSTM language models (paper D.2) trained from one recipe through Lightning."""
from typing import TYPE_CHECKING

from ..lazy import attach

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


__getattr__, __dir__ = attach(__name__, _LAZY)

__all__ = ["LMConfig", "DataConfig", "TrainConfig", "LMRecipe", "XLSTMLM", "count_parameters", "optimizer_groups",
           "prepare", "TokenCorpus", "train", "load_model", "load_tokenizer", "LMModule", "generate",
           "greedy_by_forward", "perplexity", "CharTokenizer", "ByteTokenizer", "GPT2Tokenizer"]
