import json

import numpy as np
import pytest

from xseq.lm import ByteTokenizer, CharTokenizer, GPT2Tokenizer, prepare
from xseq.lm.config import DataConfig
from xseq.lm.data import EvalWindows, TrainWindows
from xseq.lm.tokenizers import _byte_to_unicode


def test_char_and_byte_tokenizers_round_trip():
    tok = CharTokenizer.fit("hello world")
    assert tok.vocab_size == 8 and tok.decode(tok.encode("world hello")) == "world hello"
    with pytest.raises(ValueError, match="'z' is not in this character vocabulary"):
        tok.encode("zoo")
    b = ByteTokenizer()
    assert b.decode(b.encode("naïve ✓")) == "naïve ✓"


def write_gpt2_files(d, merges):
    """GPT-2's file format with a toy vocabulary: the 256 byte symbols, then one token per merge."""
    symbols = [_byte_to_unicode()[b] for b in range(256)]
    vocab = {s: i for i, s in enumerate(symbols)}
    for a, b in merges:
        vocab[a + b] = len(vocab)
    (d / "encoder.json").write_text(json.dumps(vocab))
    (d / "vocab.bpe").write_text("#version: 0.2\n" + "\n".join(f"{a} {b}" for a, b in merges) + "\n")


def test_gpt2_bpe_applies_merges_by_rank(tmp_path):
    G = _byte_to_unicode()[ord(" ")]  # GPT-2 writes a leading space as 'Ġ'
    merges = [("h", "e"), ("l", "l"), ("he", "ll"), (G, "w"), ("hell", "o")]
    write_gpt2_files(tmp_path, merges)
    tok = GPT2Tokenizer(tmp_path)
    ids = tok.encode("hello world")
    vocab = tok.encoder
    # "hello" -> he, ll -> hell -> hello ; " world" -> Ġw then single bytes
    assert ids == [vocab["hello"], vocab[G + "w"], vocab["o"], vocab["r"], vocab["l"], vocab["d"]]
    assert tok.decode(ids) == "hello world" and tok.decode(tok.encode("héllo ✓ 42")) == "héllo ✓ 42"
    with pytest.raises(ValueError, match="no GPT-2 tokenizer files"):
        GPT2Tokenizer(tmp_path / "missing")


def test_prepare_tokenises_once_into_memmaps(tmp_path, corpus):
    cfg = DataConfig(path=str(corpus), tokenizer="char", cache_dir=str(tmp_path))
    c = prepare(cfg, verbose=False)
    text = corpus.read_text()
    cut = int(len(text) * 0.9)
    tok = c.tokenizer
    assert tok.decode(c.tokens("train")) == text[:cut] and tok.decode(c.tokens("val")) == text[cut:]
    mtime = (c.directory / "train.bin").stat().st_mtime_ns
    assert prepare(cfg, verbose=False).directory == c.directory
    assert (c.directory / "train.bin").stat().st_mtime_ns == mtime  # reused, not rewritten
    with pytest.raises(FileNotFoundError, match="XSEQ_DATA_DIR"):
        prepare(DataConfig(path="no/such.txt", cache_dir=str(tmp_path)))


def test_prepare_streams_separate_validation_file(tmp_path, corpus):
    val = tmp_path / "val.txt"
    val.write_text("the cat sees bread.\n")
    c = prepare(DataConfig(path=str(corpus), val_path=str(val), tokenizer="byte", cache_dir=str(tmp_path)),
                verbose=False)
    assert c.tokenizer.decode(c.tokens("val")) == "the cat sees bread.\n"
    assert len(c.tokens("train")) == len(corpus.read_bytes())


def test_windows_are_the_same_however_the_batch_is_split():
    tokens = np.arange(10_000, dtype=np.uint16)
    one = iter(TrainWindows(tokens, 16, 8, seed=5))
    two = [iter(TrainWindows(tokens, 16, 4, seed=5, rank=r, world=2)) for r in range(2)]
    for _ in range(3):
        x, y = next(one)
        x2 = np.concatenate([next(it)[0].numpy() for it in two])
        assert np.array_equal(x.numpy(), x2)
        assert np.array_equal(y.numpy(), x.numpy() + 1)  # targets are the next tokens
    # resume: starting at micro-batch 2 gives the third batch
    again = iter(TrainWindows(tokens, 16, 8, seed=5, start=2))
    assert np.array_equal(next(again)[0].numpy(), x.numpy())
    other = next(iter(TrainWindows(tokens, 16, 8, seed=6)))[0]
    assert not np.array_equal(other.numpy(), next(iter(TrainWindows(tokens, 16, 8, seed=5)))[0].numpy())


def test_eval_windows_cover_each_window_once():
    tokens = np.arange(1000, dtype=np.uint16)
    firsts = []
    for r in range(2):
        for x, _ in EvalWindows(tokens, 10, 4, rank=r, world=2):
            firsts += x[:, 0].tolist()
    assert sorted(firsts) == list(range(0, 960, 10))  # 99 windows, cut to 12 x 8
    with pytest.raises(ValueError, match="context_length \\+ 1"):
        TrainWindows(tokens[:10], 16, 2, seed=0)
