"""Tokenizers of the LM pipeline: characters of the corpus, UTF-8 bytes, or GPT-2's byte-level BPE read from
its two public files (no network). Each one saves itself as a JSON-able spec (a gpt2 one names its files) and
as a self-contained state (what training checkpoints hold), and `from_spec` rebuilds it from either."""
from __future__ import annotations

import json
import os
import re
from functools import lru_cache
from pathlib import Path

import numpy as np

GPT2_VOCAB_SIZE = 50257


def _check_text(text) -> str:
    if not isinstance(text, str):
        raise TypeError(f"text must be a str; got {type(text).__name__}")
    return text


def _utf8(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as e:  # a lone surrogate (e.g. from a bad decode upstream)
        raise ValueError(f"text is not encodable as UTF-8: {e.reason} at position {e.start}") from None


def _check_ids(ids, vocab_size: int) -> list[int]:
    """ids (a sequence, array or tensor of token ids) as a list of ints in [0, vocab_size); ValueError/TypeError
    naming `ids` for anything else (an id out of range would index another token, or wrap around)."""
    if isinstance(ids, (str, bytes)) or not hasattr(ids, "__len__"):
        raise TypeError(f"ids must be a sequence of token ids; got {type(ids).__name__}")
    try:
        arr = np.asarray(ids.detach().cpu() if hasattr(ids, "detach") else ids)
    except (TypeError, ValueError, RuntimeError) as e:
        raise TypeError(f"ids must be a sequence of integer token ids ({e})") from None
    if arr.size == 0:
        return []
    if arr.ndim != 1 or arr.dtype.kind not in "iu":
        raise TypeError(f"ids must be a 1-d sequence of integer token ids; got shape {arr.shape}, dtype {arr.dtype}")
    lo, hi = int(arr.min()), int(arr.max())
    if lo < 0 or hi >= vocab_size:
        raise ValueError(f"ids holds token ids in [{lo}, {hi}]; the vocabulary is [0, {vocab_size})")
    return arr.tolist()


class CharTokenizer:
    """One id per distinct character of the training text, in sorted order (char-rnn / nanoGPT's scheme)."""

    kind = "char"

    def __init__(self, chars: str):
        if not isinstance(chars, str):
            raise TypeError(f"CharTokenizer's chars must be a str; got {type(chars).__name__}")
        if not chars:
            raise ValueError("CharTokenizer needs a non-empty alphabet: chars is empty")
        self.chars = "".join(sorted(set(chars)))
        self.index = {c: i for i, c in enumerate(self.chars)}

    @classmethod
    def fit(cls, text: str) -> "CharTokenizer":
        return cls(text)

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> list[int]:
        try:
            return [self.index[c] for c in _check_text(text)]
        except KeyError as e:
            raise ValueError(f"character {e.args[0]!r} is not in this character vocabulary (built from the "
                             f"training text); use tokenizer 'byte' for open-vocabulary text") from None

    def decode(self, ids) -> str:
        return "".join(self.chars[i] for i in _check_ids(ids, self.vocab_size))

    def spec(self) -> dict:
        return {"kind": self.kind, "chars": self.chars}

    def state(self) -> dict:
        return self.spec()


class ByteTokenizer:
    """UTF-8 bytes: 256 ids, any text."""

    kind = "byte"
    vocab_size = 256

    def encode(self, text: str) -> list[int]:
        return list(_utf8(_check_text(text)))

    def decode(self, ids) -> str:
        return bytes(_check_ids(ids, 256)).decode("utf-8", errors="replace")

    def spec(self) -> dict:
        return {"kind": self.kind}

    def state(self) -> dict:
        return self.spec()


@lru_cache(maxsize=1)
def _byte_to_unicode() -> dict[int, str]:
    """GPT-2's reversible map from bytes to printable characters (its files are written in these)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    out, extra = {}, 0
    for b in range(256):
        if b in printable:
            out[b] = chr(b)
        else:
            out[b] = chr(256 + extra)
            extra += 1
    return out


def _pretokenizer():
    """GPT-2's split of text into words before BPE. With the `regex` package it is the exact pattern; with
    `re` only, letters and digits are approximated by Unicode word classes (identical on ASCII text)."""
    try:
        import regex
        return regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")
    except ImportError:
        return re.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?[^\W\d_]+| ?\d+| ?(?:[^\s\w]|_)+|\s+(?!\S)|\s+""")


class GPT2Tokenizer:
    """Byte-level BPE from GPT-2's files: `encoder.json` + `vocab.bpe` (OpenAI's names) or `vocab.json` +
    `merges.txt` (Hugging Face's), in `directory` or $XSEQ_GPT2_DIR."""

    kind = "gpt2"

    def __init__(self, directory: str | os.PathLike | None = None, *, encoder: dict | None = None,
                 merges: list[str] | None = None):
        """From GPT-2's files in `directory` (or $XSEQ_GPT2_DIR), or from their contents (`encoder`, the token ->
        id map, and `merges`, "a b" lines in rank order), as `state()` holds them."""
        if encoder is not None or merges is not None:
            if not isinstance(encoder, dict) or not isinstance(merges, list):
                raise ValueError("GPT2Tokenizer needs both encoder (a dict) and merges (a list of 'a b' strings)")
            self.directory = None if directory is None else Path(directory)
            self._build(encoder, merges)
            return
        directory = directory or os.environ.get("XSEQ_GPT2_DIR")
        if not directory:
            raise ValueError("the gpt2 tokenizer needs its files: set data.tokenizer_dir (or XSEQ_GPT2_DIR) to a "
                             "folder with encoder.json and vocab.bpe (or vocab.json and merges.txt)")
        self.directory = Path(directory)
        for vocab_name, merges_name in (("encoder.json", "vocab.bpe"), ("vocab.json", "merges.txt")):
            if (self.directory / vocab_name).is_file() and (self.directory / merges_name).is_file():
                break
        else:
            raise ValueError(f"no GPT-2 tokenizer files in {self.directory}: expected encoder.json + vocab.bpe "
                             f"or vocab.json + merges.txt")
        vocab_path, merges_path = self.directory / vocab_name, self.directory / merges_name
        try:
            encoder = json.loads(vocab_path.read_text(encoding="utf-8"))
            lines = merges_path.read_text(encoding="utf-8").split("\n")
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ValueError(f"GPT-2 tokenizer files in {self.directory}: {vocab_name} or {merges_name} is not "
                             f"readable ({type(e).__name__}: {str(e)[:200]})") from None
        lines = [line.rstrip("\r") for line in lines]
        self._build(encoder, [line for line in lines if line and not line.startswith("#version")],
                    f"{vocab_name} and {merges_name} in {self.directory}")

    def _build(self, encoder: dict, merges: list[str], source: str = "the tokenizer state") -> None:
        _check_vocabulary(encoder, merges, source)
        self.encoder = dict(encoder)
        self.decoder = {i: s for s, i in self.encoder.items()}
        self.merges = list(merges)
        self.ranks = {tuple(line.split()): r for r, line in enumerate(self.merges)}
        self.byte_map = _byte_to_unicode()
        self.byte_unmap = {c: b for b, c in self.byte_map.items()}
        self.pattern = _pretokenizer()
        self.cache: dict[str, list[int]] = {}

    @property
    def vocab_size(self) -> int:
        return max(self.encoder.values()) + 1

    def _bpe(self, word: str) -> list[str]:
        parts = list(word)
        while len(parts) > 1:
            pairs = [(self.ranks.get((a, b), float("inf")), i) for i, (a, b) in enumerate(zip(parts, parts[1:]))]
            rank, _ = min(pairs)
            if rank == float("inf"):
                break
            a, b = next((parts[i], parts[i + 1]) for r, i in pairs if r == rank)
            merged, i = [], 0
            while i < len(parts):  # merge every occurrence of the best pair, left to right
                if i + 1 < len(parts) and parts[i] == a and parts[i + 1] == b:
                    merged.append(a + b)
                    i += 2
                else:
                    merged.append(parts[i])
                    i += 1
            parts = merged
        return parts

    def encode(self, text: str) -> list[int]:
        ids = []
        _utf8(_check_text(text))  # the whole text once: a message with the position of what cannot be encoded
        for word in self.pattern.findall(text):
            cached = self.cache.get(word)
            if cached is None:
                mapped = "".join(self.byte_map[b] for b in word.encode("utf-8"))
                cached = [self.encoder[p] for p in self._bpe(mapped)]
                if len(self.cache) < 100_000:
                    self.cache[word] = cached
            ids.extend(cached)
        return ids

    def decode(self, ids) -> str:
        ids = _check_ids(ids, self.vocab_size)
        unused = [i for i in ids if i not in self.decoder]
        if unused:
            raise ValueError(f"ids holds token id(s) {unused[:5]} that no token of this vocabulary has")
        text = "".join(self.decoder[i] for i in ids)
        return bytes(self.byte_unmap[c] for c in text).decode("utf-8", errors="replace")

    def spec(self) -> dict:
        return {"kind": self.kind, "directory": None if self.directory is None else str(self.directory)}

    def state(self) -> dict:
        """The whole tokenizer (vocabulary and merges) as plain data: a checkpoint needs no files beside it."""
        return {"kind": self.kind, "encoder": self.encoder, "merges": self.merges}


def _check_vocabulary(encoder, merges, source: str) -> None:
    """GPT-2's vocabulary as byte-level BPE needs it: distinct int ids >= 0, every byte's symbol, merges of two
    symbols each whose result is a token. A ValueError naming `source` otherwise (never a KeyError later)."""
    if not isinstance(encoder, dict) or not encoder:
        raise ValueError(f"{source}: the vocabulary must be a non-empty JSON object token -> id; got "
                         f"{type(encoder).__name__}")
    ids = list(encoder.values())
    if not all(isinstance(k, str) for k in encoder) or \
            not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in ids):
        raise ValueError(f"{source}: the vocabulary must map token strings to int ids >= 0")
    if len(set(ids)) != len(ids):
        raise ValueError(f"{source}: the vocabulary gives one id to several tokens")
    missing = [c for c in _byte_to_unicode().values() if c not in encoder]
    if missing:
        raise ValueError(f"{source}: the vocabulary lacks the symbols of {len(missing)} byte(s) (first "
                         f"{missing[0]!r}); byte-level BPE needs all 256")
    if not isinstance(merges, list):
        raise ValueError(f"{source}: merges must be a list of 'a b' lines")
    for r, line in enumerate(merges):
        parts = line.split() if isinstance(line, str) else None
        if parts is None or len(parts) != 2 or "".join(parts) not in encoder:
            raise ValueError(f"{source}: merge {r} ({str(line)[:50]!r}) is not two symbols whose joint token is in "
                             f"the vocabulary")


def from_spec(spec: dict):
    """The tokenizer of a spec() (a gpt2 one reads its files again) or of a state() (self-contained)."""
    kind = spec.get("kind") if isinstance(spec, dict) else None
    if kind == "char" and isinstance(spec.get("chars"), str):
        return CharTokenizer(spec["chars"])
    if kind == "byte":
        return ByteTokenizer()
    if kind == "gpt2":
        if "encoder" in spec:
            return GPT2Tokenizer(encoder=spec["encoder"], merges=spec.get("merges"))
        return GPT2Tokenizer(spec.get("directory"))
    raise ValueError(f"unknown tokenizer spec {str(spec)[:200]}")
