"""Reading training checkpoints (Lightning's .ckpt files) for inference: the model, its recipe and its tokenizer,
from the file alone.

Every read is torch.load(weights_only=True): the file may hold only tensors and plain data (dicts, lists,
numbers, strings), so opening someone else's checkpoint runs no code from it; one holding a pickled object
that would is refused with a ValueError naming the file, and so is a truncated, corrupted or foreign file.
Resuming a run goes through Lightning, which `train` also asks to read weights-only."""
from __future__ import annotations

from pathlib import Path

from ..common.checkpoints import safe_load as common_safe_load
from .config import LMRecipe
from .model import XLSTMLM
from .tokenizers import from_spec

TOKENIZER_KEY = "xseq_tokenizer"  # the tokenizer's state() in every checkpoint train() writes


def safe_load(path: str | Path, map_location="cpu", mmap: bool = False):
    """torch.load(path, weights_only=True), its failures one ValueError naming the file."""
    return common_safe_load(path, "xseq.lm", label="", map_location=map_location, mmap=mmap)


def read_checkpoint(path: str | Path, map_location="cpu", mmap: bool = False) -> dict:
    """The contents of a training checkpoint (weights-only), checked to be one of xseq.lm."""
    ck = safe_load(path, map_location, mmap)
    hp = ck.get("hyper_parameters") if isinstance(ck, dict) else None
    recipe = hp.get("recipe") if isinstance(hp, dict) else None
    if not isinstance(recipe, dict) or not isinstance(ck.get("state_dict"), dict):
        raise ValueError(f"{str(path)!r} is not an xseq.lm training checkpoint (no recipe and model weights in it)")
    return ck


def recipe_of(ck: dict, path="checkpoint") -> LMRecipe:
    d = ck["hyper_parameters"]["recipe"]
    try:
        return LMRecipe.from_dict({k: v for k, v in d.items() if k != "name"}, name=d.get("name", "lm"))
    except (ValueError, TypeError) as e:
        raise ValueError(f"{str(path)!r} holds a recipe this xseq cannot read: {e}") from None


def model_of(ck: dict, path="checkpoint") -> tuple[XLSTMLM, LMRecipe]:
    """The XLSTMLM of a read checkpoint (float32, eval mode) and its recipe."""
    recipe = recipe_of(ck, path)
    model = XLSTMLM(recipe.model)
    state = {k[len("model."):]: v for k, v in ck["state_dict"].items() if k.startswith("model.")}
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise ValueError(f"{str(path)!r}: its weights do not fit the model its recipe describes "
                         f"({' '.join(str(e).split())[:300]})") from None
    return model.eval(), recipe


def tokenizer_of(ck: dict, path="checkpoint"):
    """The tokenizer a read checkpoint holds; a ValueError naming the file for one written before checkpoints
    held their tokenizer."""
    state = ck.get(TOKENIZER_KEY)
    if state is None:
        raise ValueError(f"{str(path)!r} holds no tokenizer (it was written by an older xseq); pass --data-dir with "
                         f"the folder holding its training text to rebuild the tokenizer from it, or retrain")
    try:
        return from_spec(state)
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{str(path)!r} holds a tokenizer this xseq cannot rebuild: {e}") from None


def load_model(checkpoint: str | Path, map_location="cpu") -> tuple[XLSTMLM, LMRecipe]:
    """The XLSTMLM of a training checkpoint (float32, eval mode) and its recipe."""
    return model_of(read_checkpoint(checkpoint, map_location), checkpoint)


def load_tokenizer(checkpoint: str | Path):
    """The tokenizer a training checkpoint holds (no data files needed)."""
    return tokenizer_of(read_checkpoint(checkpoint, mmap=True), checkpoint)
