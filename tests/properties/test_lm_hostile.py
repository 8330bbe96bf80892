"""Hostile input, generated (Hypothesis), for the LM tokenisers (character, byte and GPT-2 byte-level BPE) and
xseq.lm.generate: any text (unicode, control characters, lone surrogates, empty), any ids (out of range, negative,
floats, nested), malformed GPT-2 files, and generation with generated prompts, lengths, temperatures and top-k.
Every call works (decode(encode(text)) == text where the text is encodable; generated tokens in the vocabulary)
or raises ValueError/TypeError naming the argument (or the tokenizer's files)."""
import json

import numpy as np
import pytest
import torch

from tests.properties.outcome import examples, works_or_names

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from tests.lm.test_data import write_gpt2_files  # noqa: E402
from xseq import XLSTMConfig  # noqa: E402
from xseq.lm.generate import generate  # noqa: E402
from xseq.lm.tokenizers import ByteTokenizer, CharTokenizer, GPT2Tokenizer, _byte_to_unicode, from_spec  # noqa: E402
from xseq.nn.lm import XLSTMLM, LMConfig  # noqa: E402

# any code point, surrogates included (st.text() leaves them out by default)
TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=40) | st.sampled_from(
    ["", "\ud800", "a\udfffb", "\x00\x01\n\r\t", "hello world", "héllo ✓ 42", "🙂" * 5, " " * 7, "'s 've 're"])
IDS = st.one_of(st.lists(st.integers(-3, 300), max_size=12), st.lists(st.floats(allow_nan=True), max_size=3),
                st.sampled_from([[], [[1, 2]], "abc", None, 5, torch.tensor([1, 2]), torch.tensor([[1]]),
                                 np.array([1, 2], dtype=np.uint8), np.array([1.0, 2.0]), [True, False], [2**70]]))
G = _byte_to_unicode()[ord(" ")]
MERGES = [("h", "e"), ("l", "l"), ("he", "ll"), (G, "w"), ("hell", "o")]


def roundtrips(tok, text) -> None:
    ok, ids = works_or_names(lambda: tok.encode(text), ["text"], "encode")
    if ok:
        assert all(isinstance(i, int) and 0 <= i < tok.vocab_size for i in ids)
        assert tok.decode(ids) == text
    else:
        assert isinstance(tok, CharTokenizer) or any(0xD800 <= ord(c) <= 0xDFFF for c in text), \
            "a byte-level tokenizer refused text that UTF-8 encodes"


@examples(100)
@given(alphabet=TEXT, text=TEXT, ids=IDS)
def test_char_tokenizer_hostile(alphabet, text, ids):
    ok, tok = works_or_names(lambda: CharTokenizer.fit(alphabet), ["chars"], "fit")
    if not ok:
        assert alphabet == ""
        return
    roundtrips(tok, text)
    roundtrips(tok, alphabet)  # its own alphabet always encodes
    ok, out = works_or_names(lambda: tok.decode(ids), ["ids"], "decode")
    if ok:
        assert isinstance(out, str)
    assert from_spec(tok.state()).chars == tok.chars


@examples(100)
@given(text=TEXT, ids=IDS)
def test_byte_tokenizer_hostile(text, ids):
    tok = ByteTokenizer()
    roundtrips(tok, text)
    ok, out = works_or_names(lambda: tok.decode(ids), ["ids"], "decode")
    if ok:
        assert isinstance(out, str)


_GPT2 = {}


def gpt2(tmp_path_factory) -> GPT2Tokenizer:
    if not _GPT2:
        d = tmp_path_factory.mktemp("gpt2")
        write_gpt2_files(d, MERGES)
        _GPT2["tok"] = GPT2Tokenizer(d)
    return _GPT2["tok"]


@examples(100)
@given(text=TEXT, ids=IDS)
def test_gpt2_tokenizer_hostile(tmp_path_factory, text, ids):
    tok = gpt2(tmp_path_factory)
    roundtrips(tok, text)
    ok, out = works_or_names(lambda: tok.decode(ids), ["ids"], "decode")
    if ok:
        assert isinstance(out, str)


@examples(40)
@given(vocab=st.sampled_from(["ok"] * 8 + ["not_json", "list", "str_ids", "negative", "duplicate_ids", "no_bytes",
                                           "latin1", "empty"]),
       merges=st.sampled_from(["ok"] * 6 + ["three_parts", "one_part", "unknown_result", "crlf", "blank_lines",
                                            "latin1"]),
       text=TEXT)
def test_gpt2_files_hostile(tmp_path_factory, vocab, merges, text):
    d = tmp_path_factory.mktemp("gpt2_bad")
    write_gpt2_files(d, MERGES)
    enc = json.loads((d / "encoder.json").read_text(encoding="utf-8"))
    bad_vocab = {"not_json": "{'a': 1,", "list": json.dumps(list(enc)), "empty": "{}",
                 "str_ids": json.dumps({k: str(v) for k, v in enc.items()}),
                 "negative": json.dumps({**enc, "zz": -5}),
                 "duplicate_ids": json.dumps({**enc, "zz": 3}),
                 "no_bytes": json.dumps({k: v for k, v in enc.items() if k != "a"})}
    if vocab == "latin1":
        (d / "encoder.json").write_bytes("{\"é\": 1}".encode("latin-1"))
    elif vocab in bad_vocab:
        (d / "encoder.json").write_text(bad_vocab[vocab], encoding="utf-8")
    lines = {"three_parts": "#version: 0.2\nh e l\n", "one_part": "#version: 0.2\nhe\n",
             "unknown_result": "#version: 0.2\nx y\n", "crlf": "#version: 0.2\r\nh e\r\nl l\r\n",
             "blank_lines": "#version: 0.2\n\n\nh e\n\n"}
    if merges == "latin1":
        (d / "vocab.bpe").write_bytes("#version: 0.2\n\xe9 e\n".encode("latin-1"))
    elif merges in lines:
        (d / "vocab.bpe").write_text(lines[merges], encoding="utf-8", newline="")
    ok, tok = works_or_names(lambda: GPT2Tokenizer(d), [str(d)], "GPT2Tokenizer(files)")
    if ok:
        roundtrips(tok, text)
        again = from_spec(tok.state())  # what a checkpoint holds rebuilds the same tokenizer
        assert again.encoder == tok.encoder and again.merges == tok.merges


_LM = {}


def lm() -> XLSTMLM:
    if not _LM:
        torch.manual_seed(0)
        enc = XLSTMConfig(d_model=16, layout="ms", mlstm={"num_heads": 2}, slstm={"num_heads": 2})
        _LM["m"] = XLSTMLM(LMConfig(vocab_size=11, pad_vocab_multiple=8, encoder=enc)).eval()
    return _LM["m"]


ORDINARY = dict(B=[1, 3], T=[1, 4, 300], dtype=[torch.int64, torch.int32, torch.uint8], bad_id=[None],
                prompt_kind=["tensor"], max_new=[0, 1, 5], temperature=[1.0, 1e-30, 1e-3, 1e30, float("inf"),
                                                                       np.float32(0.5)],
                top_k=[None, 1, 3, 11, 100], generator=["none", "torch"])
HOSTILE = dict(B=[0], T=[0], dtype=[torch.float32, torch.bool], bad_id=[-1, 11, 16, 10**6], prompt_kind=["list", "1d"],
               max_new=[-1, 2.0, None], temperature=[0.0, -1.0, float("nan"), "hot"], top_k=[0, 2.5],
               generator=["numpy"])


@st.composite
def cases(draw):
    """One hostile argument at a time (or none, or all at once), the others ordinary."""
    hostile = draw(st.sampled_from([None, "all", *ORDINARY]))
    return {k: draw(st.sampled_from(HOSTILE[k] if hostile in (k, "all") else ORDINARY[k])) for k in ORDINARY}


@examples(60)
@given(case=cases(), greedy=st.booleans(), seed=st.integers(0, 2**16))
def test_generate_hostile(case, greedy, seed):
    B, T, dtype, bad_id, prompt_kind = case["B"], case["T"], case["dtype"], case["bad_id"], case["prompt_kind"]
    max_new, temperature, top_k, generator = case["max_new"], case["temperature"], case["top_k"], case["generator"]
    model = lm()
    g = torch.Generator().manual_seed(seed)
    prompt = torch.randint(0, 11, (B, T), generator=g).to(dtype)
    if bad_id is not None and prompt.numel():
        prompt = prompt.long()
        prompt.view(-1)[0] = bad_id
    if prompt_kind == "list":
        prompt = prompt.tolist()
    elif prompt_kind == "1d":
        prompt = prompt.reshape(-1)
    gen = {"none": None, "torch": g, "numpy": np.random.default_rng(0)}[generator]
    ok, out = works_or_names(lambda: generate(model, prompt, max_new, greedy=greedy, temperature=temperature,
                                              top_k=top_k, generator=gen),
                             ["prompt", "max_new_tokens", "temperature", "top_k", "generator"], "generate")
    if ok:
        assert out.shape == (B, T + max_new) and out.dtype == torch.int64
        assert int(out.min()) >= 0 and int(out.max()) < model.vocab_size
