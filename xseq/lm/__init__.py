"""xseq.lm: xLSTM language models (paper D.2) trained from one recipe through Lightning."""
from .config import DataConfig, LMConfig, LMRecipe, TrainConfig
from .data import TokenCorpus, prepare
from .evaluate import perplexity
from .generate import generate, greedy_by_forward
from .model import XLSTMLM, count_parameters, optimizer_groups
from .tokenizers import ByteTokenizer, CharTokenizer, GPT2Tokenizer
from .training import LMModule, load_model, train

__all__ = ["LMConfig", "DataConfig", "TrainConfig", "LMRecipe", "XLSTMLM", "count_parameters", "optimizer_groups",
           "prepare", "TokenCorpus", "train", "load_model", "LMModule", "generate", "greedy_by_forward",
           "perplexity", "CharTokenizer", "ByteTokenizer", "GPT2Tokenizer"]
