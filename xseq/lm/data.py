"""The LM data pipeline: a text corpus is tokenised once into memory-mapped token files (train.bin, val.bin
and meta.json in a cache folder keyed by the source and tokenizer), and batches of context windows are read
from them. Window g of the run is fixed by (seed, g) alone, so a run gives the same batches on one device
or split over several, and after a resume."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import IterableDataset

from ..datasets.paths import data_path
from .config import DataConfig
from .tokenizers import ByteTokenizer, CharTokenizer, GPT2Tokenizer, from_spec

FORMAT = 1


def _read_text(path: Path) -> str:
    if path.is_dir():
        files = sorted(path.glob("*.txt"))
        if not files:
            raise ValueError(f"data.path {str(path)!r} is a folder without .txt files")
        return "\n\n".join(f.read_text(encoding="utf-8") for f in files)
    return path.read_text(encoding="utf-8")


def _source_key(paths: list[Path], cfg: DataConfig) -> str:
    h = hashlib.sha1()
    for p in paths:
        files = sorted(p.glob("*.txt")) if p.is_dir() else [p]
        for f in files:
            st = f.stat()
            h.update(f"{f.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode())
    h.update(f"{cfg.tokenizer}|{cfg.tokenizer_dir}|{cfg.val_path is None}|{cfg.val_fraction}|{FORMAT}".encode())
    return h.hexdigest()[:12]


def cache_root(cfg: DataConfig) -> Path:
    return Path(cfg.cache_dir or os.environ.get("XSEQ_CACHE_DIR") or Path.home() / ".cache" / "xseq") / "lm"


@dataclass
class TokenCorpus:
    """A prepared corpus: train.bin / val.bin (flat token ids) and meta.json in `directory`."""
    directory: Path

    @property
    def meta(self) -> dict:
        return json.loads((self.directory / "meta.json").read_text())

    @property
    def tokenizer(self):
        return from_spec(self.meta["tokenizer"])

    @property
    def vocab_size(self) -> int:
        return self.meta["vocab_size"]

    def tokens(self, split: str) -> np.ndarray:
        if split not in ("train", "val"):
            raise ValueError(f"split must be 'train' or 'val'; got {split!r}")
        meta = self.meta
        return np.memmap(self.directory / f"{split}.bin", dtype=np.dtype(meta["dtype"]), mode="r",
                         shape=(meta[f"{split}_tokens"],))


def _append_tokens(f, ids: list[int], dtype) -> int:
    arr = np.asarray(ids, dtype=dtype)
    arr.tofile(f)
    return int(arr.size)


def _pieces(path: Path, piece_chars: int = 1 << 23):
    """The text of a file (or of a folder's .txt files, in name order) in pieces of whole lines."""
    files = sorted(path.glob("*.txt")) if path.is_dir() else [path]
    for i, name in enumerate(files):
        with open(name, encoding="utf-8") as f:
            buf, size = [], 0
            for line in f:
                buf.append(line)
                size += len(line)
                if size >= piece_chars:
                    yield "".join(buf)
                    buf, size = [], 0
            if i + 1 < len(files):
                buf.append("\n\n")
            if buf:
                yield "".join(buf)


def prepare(cfg: DataConfig, data_dir: str | os.PathLike | None = None, verbose: bool = True) -> TokenCorpus:
    """Tokenise cfg.path (and cfg.val_path) into the cache unless an up-to-date copy is there already."""
    if cfg.path is None:
        raise ValueError("data.path is not set: give the text corpus to train on (a .txt file or a folder of them)")
    src = data_path(cfg.path, data_dir)
    val_src = None if cfg.val_path is None else data_path(cfg.val_path, data_dir)
    key = _source_key([src] + ([val_src] if val_src else []), cfg)
    out = cache_root(cfg) / f"{src.stem}-{cfg.tokenizer}-{key}"
    if (out / "meta.json").is_file():
        return TokenCorpus(out)
    if val_src is None:  # one text, split by characters: the last val_fraction is held out
        text = _read_text(src)
        cut = int(len(text) * (1.0 - cfg.val_fraction))
        sources = {"train": [text[:cut]], "val": [text[cut:]]}
    else:  # separate files, streamed in pieces of lines (corpora larger than memory)
        sources = {"train": _pieces(src), "val": _pieces(val_src)}
    if cfg.tokenizer == "char":
        alphabet = set()
        for split in ("train", "val"):
            for piece in (sources[split] if val_src is None else _pieces(src if split == "train" else val_src)):
                alphabet.update(piece)
        tok = CharTokenizer("".join(alphabet))
    elif cfg.tokenizer == "byte":
        tok = ByteTokenizer()
    else:
        tok = GPT2Tokenizer(cfg.tokenizer_dir)
    if verbose:
        print(f"[xseq lm] tokenising {src} ({cfg.tokenizer}) into {out}", flush=True)
    dtype = np.uint16 if tok.vocab_size <= 1 << 16 else np.uint32
    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    tmp.mkdir(parents=True, exist_ok=True)
    counts = {}
    for split in ("train", "val"):
        with open(tmp / f"{split}.bin", "wb") as f:
            counts[split] = sum(_append_tokens(f, tok.encode(piece), dtype) for piece in sources[split])
    meta = {"format": FORMAT, "source": str(src), "val_source": None if val_src is None else str(val_src),
            "tokenizer": tok.spec(), "vocab_size": tok.vocab_size, "dtype": np.dtype(dtype).name,
            "train_tokens": counts["train"], "val_tokens": counts["val"]}
    (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
    try:
        tmp.rename(out)
    except OSError:  # another process finished first; theirs is identical
        shutil.rmtree(tmp, ignore_errors=True)
    return TokenCorpus(out)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: a counter -> 64 well-mixed bits."""
    with np.errstate(over="ignore"):
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def window_offsets(g: np.ndarray, n_tokens: int, context: int, seed: int, sampling: str) -> np.ndarray:
    """First-token offsets of windows with global indices g (each window holds context + 1 tokens)."""
    if n_tokens < context + 1:
        raise ValueError(f"the token file holds {n_tokens} tokens, fewer than context_length + 1 = {context + 1}")
    if sampling == "sequential":
        return (g % ((n_tokens - 1) // context)) * context
    mixed = _mix(g.astype(np.uint64) ^ _mix(np.full_like(g, seed, dtype=np.uint64)))
    return (mixed % np.uint64(n_tokens - context)).astype(np.int64)


def gather(tokens: np.ndarray, offsets: np.ndarray, context: int) -> tuple[torch.Tensor, torch.Tensor]:
    window = torch.from_numpy(np.asarray(tokens[offsets[:, None] + np.arange(context + 1)]).astype(np.int64))
    return window[:, :-1], window[:, 1:]


class TrainWindows(IterableDataset):
    """Endless micro-batches for one rank: micro-batch u of rank r holds windows (u * world + r) * b + j,
    j < b. An optimizer step of `accumulate` micro-batches on `world` ranks thus covers a contiguous range of
    global window indices, the same for any split of the global batch. `start` skips micro-batches (resume)."""

    def __init__(self, tokens: np.ndarray, context: int, micro_batch: int, seed: int, sampling: str = "random",
                 rank: int = 0, world: int = 1, start: int = 0):
        self.tokens, self.context, self.b = tokens, context, micro_batch
        self.seed, self.sampling, self.rank, self.world, self.start = seed, sampling, rank, world, start
        window_offsets(np.zeros(1, dtype=np.int64), len(tokens), context, seed, sampling)  # size check

    def __iter__(self):
        u, j = self.start, np.arange(self.b)
        while True:
            g = (u * self.world + self.rank) * self.b + j
            yield gather(self.tokens, window_offsets(g, len(self.tokens), self.context, self.seed, self.sampling),
                         self.context)
            u += 1


class EvalWindows(IterableDataset):
    """Non-overlapping windows of a held-out split in order, cut so that every rank gets the same number of
    full micro-batches (at most max_batches each): each window is scored exactly once."""

    def __init__(self, tokens: np.ndarray, context: int, micro_batch: int, rank: int = 0, world: int = 1,
                 max_batches: int | None = None):
        n_windows = (len(tokens) - 1) // context
        per_rank = n_windows // (micro_batch * world)
        if max_batches is not None:
            per_rank = min(per_rank, max_batches)
        if per_rank < 1:
            raise ValueError(f"the held-out split ({len(tokens)} tokens) has fewer than micro_batch_size x devices"
                             f" = {micro_batch * world} windows of context_length {context}")
        self.tokens, self.context, self.b = tokens, context, micro_batch
        self.rank, self.world, self.n = rank, world, per_rank

    def __len__(self):
        return self.n

    def __iter__(self):
        j = np.arange(self.b)
        for u in range(self.n):
            g = (u * self.world + self.rank) * self.b + j
            yield gather(self.tokens, g * self.context, self.context)
