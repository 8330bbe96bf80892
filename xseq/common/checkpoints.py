"""Reading xseq's files safely: torch.load(weights_only=True), its failures one ValueError naming the file.

Every model file xseq writes (forecasters, classifiers, TiRex checkpoints, RL agents, LM checkpoints) holds only
tensors and plain data (dicts, lists, tuples, numbers, strings, bytes), so opening one runs no code from it. A file
holding a pickled Python object that would run code is refused (nothing in it runs); a truncated, corrupted or
non-torch file is reported as such, never as a traceback from inside torch."""
from __future__ import annotations

import io
import os
import pickle
import pickletools
import re
import warnings
import zipfile
from pathlib import Path

import torch


def describe(source) -> str:
    """How a message names what was read: a path quoted, a file object by its name or as 'a file object'."""
    if isinstance(source, (str, os.PathLike)):
        return repr(str(source))
    name = getattr(source, "name", None)
    return repr(str(name)) if isinstance(name, (str, os.PathLike)) else "the given file object"


def safe_load(source, what: str = "xseq", *, label: str | None = None, note: str = "", map_location="cpu",
              mmap: bool = False):
    """torch.load(source, weights_only=True), its failures one ValueError naming the file.

    source: a path, or a binary file object (e.g. io.BytesIO). what: whose checkpoints they are, for the refusal
    message ("xseq.rl checkpoints hold only tensors and plain data"). label: the kind of checkpoint in the other
    messages ("not a readable <label> checkpoint"; default `what`, "" for plain "checkpoint"). note: a sentence
    appended to the refusal (e.g. how to get a file without such objects)."""
    label = what if label is None else label
    kind = f"{label} checkpoint" if label else "checkpoint"
    name = describe(source)
    if isinstance(source, (str, os.PathLike)):
        source = Path(source)
        if not source.is_file():
            raise ValueError(f"no {kind} at {name}" + (" (it is a folder)" if source.is_dir() else ""))
    elif not (hasattr(source, "read") and hasattr(source, "seek")):
        raise TypeError(f"a {kind} is read from a path or a binary file object; got {type(source).__name__}")
    elif isinstance(source, io.TextIOBase):
        raise TypeError(f"{name}: a {kind} is read from a binary file object; got a text one (open it with 'rb')")
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*Detected pickle protocol", category=UserWarning)
            kwargs = {"mmap": True} if mmap and isinstance(source, Path) else {}
            return torch.load(source, map_location=map_location, weights_only=True, **kwargs)
    except pickle.UnpicklingError as e:
        found = re.search(r"GLOBAL (\S+) was not an allowed global", str(e)) or _raw_pickle_object(source)
        if found is None:  # not a pickle torch.save wrote (or a damaged one): nothing in it was run
            reason = re.search(r"WeightsUnpickler error:\s*(.+)", str(e))
            raise ValueError(f"{name} is not a readable {kind} (truncated or corrupted?): "
                             f"{reason.group(1).strip()[:200] if reason else first_line(e)}") from None
        raise ValueError(f"refused to load {name}: it holds a pickled Python object ({found.group(1)}) that could run "
                         f"code when loaded, and {what} checkpoints hold only tensors and plain data"
                         + (f" ({note})" if note else "")) from None
    except Exception as e:  # anything else a damaged file makes torch or its unpickler raise (struct.error, ...)
        raise ValueError(f"{name} is not a readable {kind} (truncated or corrupted?): {first_line(e)}") from None


def _raw_pickle_object(source):
    """For a plain pickle (not torch.save's zip; the weights-only unpickler stops at its first unsupported opcode):
    a match whose group(1) names the first object it would build by running code, found by reading its opcodes
    (pickletools runs nothing); None where it has none, is unreadable, is a zip or is over 64 MB."""
    try:
        if isinstance(source, Path):
            if source.stat().st_size > 2**26:
                return None
            data = source.read_bytes()
        else:
            source.seek(0)
            data = source.read(2**26 + 1)
        if len(data) > 2**26 or zipfile.is_zipfile(io.BytesIO(data)):
            return None
        for op, arg, _ in pickletools.genops(data):
            if op.name in ("GLOBAL", "STACK_GLOBAL", "INST", "OBJ", "REDUCE", "NEWOBJ", "NEWOBJ_EX", "BUILD"):
                return re.match(r"(.*)", f"{op.name} {arg}" if arg else op.name)
    except Exception:  # a damaged pickle: reported as unreadable
        return None
    return None


def first_line(e: BaseException) -> str:
    """'ErrorType: the first line of its message' (at most 200 characters of it)."""
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:200]}" if text else type(e).__name__


def check_format(state, fmt: str, source, what: str, older: tuple[str, ...] = ()) -> dict:
    """state, checked to be a dict whose "format" is fmt; a ValueError naming the file otherwise (saying so for a
    file of an older xseq, `older` listing those formats, and naming the format of another xseq file)."""
    name = describe(source)
    found = state.get("format") if isinstance(state, dict) else None
    if found == fmt:
        return state
    if found in older:
        raise ValueError(f"{name} is a {what} saved by an older xseq (format {found!r}; this xseq reads {fmt!r}): "
                         f"fit and save it again")
    if isinstance(found, str) and found.startswith("xseq."):
        raise ValueError(f"{name} is not a saved {what}: it holds {found!r} (this xseq reads {fmt!r})")
    raise ValueError(f"{name} is not a saved {what} (no {fmt!r} format tag in it)")
