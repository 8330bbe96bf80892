"""One minimal test per bug the hostile-input properties found (each failed before its fix): the property files
search, these pin the fixed cases down."""
import json

import numpy as np
import pandas as pd
import pytest
import torch

from xseq import XLSTMClassifier, XLSTMConfig, XLSTMForecaster
from xseq.datasets import load_csv, load_ts
from xseq.forecast.frames import read_panel
from xseq.lm.generate import generate
from xseq.lm.tokenizers import ByteTokenizer, CharTokenizer, GPT2Tokenizer
from xseq.nn.lm import XLSTMLM, LMConfig

FAST_F = dict(d_model=8, num_heads=2, layout="m", patch_len=4, max_epochs=1, batch_size=32, max_train_windows=32,
              threads=1, progress_bar=False, verbose=0, val_size=0)
HOURS = pd.date_range("2024-01-01", periods=30, freq="h")


def wide(T=30, **cols):
    return pd.DataFrame(cols or {"a": np.sin(np.arange(T) / 3)}, index=HOURS[:T])


@pytest.fixture(scope="module")
def forecaster():
    return XLSTMForecaster(3, 8, **FAST_F).fit(wide())


# ------------------------------------------------------------------------------------- forecaster input
def test_long_frame_with_text_values_names_y():
    y = pd.DataFrame({"unique_id": "s", "ds": HOURS[:5], "y": ["1", "2", "x", "4", "5"]})
    with pytest.raises(ValueError, match=r"y\['y'\] \(unique_id 's'\) holds values that are not numbers"):
        read_panel(y)


def test_long_frame_rows_without_a_unique_id_are_refused_not_dropped():
    y = pd.DataFrame({"unique_id": ["s"] * 5 + [None] * 5, "ds": list(HOURS[:5]) * 2, "y": np.arange(10.0)})
    with pytest.raises(ValueError, match="y has a missing unique_id .* at position 5"):
        read_panel(y)


def test_duplicated_column_names_are_named_as_such():
    with pytest.raises(ValueError, match=r"y has duplicated column names \['a'\]"):
        read_panel(pd.DataFrame(np.ones((5, 2)), index=HOURS[:5], columns=["a", "a"]))
    y = pd.DataFrame([["s", HOURS[0], 1.0, 2.0]], columns=["unique_id", "ds", "y", "y"])
    with pytest.raises(ValueError, match=r"duplicated column names \['y'\]"):
        read_panel(y)


def test_a_frame_without_columns_is_refused():
    with pytest.raises(ValueError, match="y has no columns"):
        XLSTMForecaster(3, 8, **FAST_F).fit(pd.DataFrame(index=HOURS))


@pytest.mark.parametrize("fill", ["ffill", "interpolate"])
def test_an_all_missing_series_with_a_fill_is_refused_not_left_nan(fill):
    y = wide(a=np.sin(np.arange(30.0)), b=np.full(30, np.nan))
    with pytest.raises(ValueError, match=r"y\['b'\] has no observed value"):
        XLSTMForecaster(3, 8, fill=fill, **FAST_F).fit(y)


def test_complex_values_are_refused_not_truncated():
    with pytest.raises(ValueError, match=r"y\['a'\] holds complex numbers"):
        read_panel(wide(a=np.arange(30.0) + 1j))


def test_tuple_series_names_backtest():
    """A series named by a tuple (MultiIndex columns): cross_validate built its frame from the tuple as a list."""
    y = wide(a=np.sin(np.arange(30.0)))
    y.columns = pd.Index([("t", 1)], dtype=object)
    f = XLSTMForecaster(3, 8, **FAST_F).fit(y)
    bt = f.cross_validate(y, n_windows=2)
    assert len(bt.forecasts) == 6 and set(bt.forecasts["unique_id"]) == {("t", 1)}


def test_a_history_far_outside_the_fitted_scale_names_y(forecaster):
    with pytest.raises(ValueError, match="y holds values .* times its series' fitted scale"):
        forecaster.predict(y=wide() * 1e200)


@pytest.mark.parametrize("n_windows", [True, 10**12])
def test_cross_validate_checks_n_windows_before_making_arrays(forecaster, n_windows):
    with pytest.raises(ValueError, match="n_windows"):
        forecaster.cross_validate(wide(), n_windows=n_windows)


def test_values_near_1e200_do_not_overflow_the_scaling():
    """The std of values beyond 1e154 overflowed (inf scale, NaN forecasts)."""
    y = wide(a=1e200 * np.sin(np.arange(30.0) / 3))
    fc = XLSTMForecaster(3, 8, **FAST_F).fit(y).predict()["a"].to_numpy()
    assert np.isfinite(fc).all() and np.abs(fc).max() < 1e202


# ------------------------------------------------------------------------------------- classifier input
@pytest.mark.parametrize("X, match", [
    (np.array([["1", "x"], ["2", "3"]], dtype=object), r"X is an object array whose entries are not all numbers"),
    ([[[1.0, 2.0], [3.0]], [[1.0, 2.0], [3.0]]], r"X\[0\] must be an array"),
    (np.zeros((2, 3, 0)), "X has 0 channels"),
    (np.full((2, 3), 1e39), "beyond float32's range"),
])
def test_classifier_sequences_are_named(X, match):
    with pytest.raises(ValueError, match=match):
        XLSTMClassifier(max_epochs=1, verbose=0).fit(X, ["a", "b"])


# ------------------------------------------------------------------------------------- RL observations
@pytest.fixture(scope="module")
def agents():
    from tests.properties.test_rl_hostile import agent
    return agent


@pytest.mark.parametrize("obs, match", [
    ({"pos": np.zeros((1, 2)), "card": np.array([7])}, r"outside \[0, 3\)"),  # was an IndexError
    ({"pos": np.zeros((1, 2)), "card": np.array([-1])}, r"outside \[0, 3\)"),  # was silently the last card
    ({"pos": np.zeros((1, 2))}, "keys"),  # was a KeyError
    ((np.zeros((1, 2)), np.zeros(1, int)), "keys"),  # was a TypeError about tuple indices
    ({}, "empty dict"),  # was a StopIteration
])
def test_dict_observations_are_named(agents, obs, match):
    with pytest.raises(ValueError, match=match):
        agents("dict").predict(obs)


@pytest.mark.parametrize("obs, match", [
    (np.zeros((2, 4), np.float32), "4 values per row, the space has 5"),  # was a matmul error
    (np.zeros((2, 5)) + 1j, "complex"),  # was silently the real part
    (np.zeros((0, 5), np.float32), "no rows"),
])
def test_box_observations_are_named(agents, obs, match):
    with pytest.raises(ValueError, match=r"obs .*" + match):
        agents("box").predict(obs)


def test_the_state_predict_returned_for_other_rows_is_checked(agents):
    a = agents("box")
    _, state = a.predict(np.zeros((3, 5), np.float32))
    with pytest.raises(ValueError, match="state does not belong"):  # was an error from inside the encoder
        a.predict(np.zeros((2, 5), np.float32), state)


# ------------------------------------------------------------------------------------- tokenizers, generate
def test_decode_refuses_ids_outside_the_vocabulary(tmp_path):
    from tests.lm.test_data import write_gpt2_files
    write_gpt2_files(tmp_path, [("h", "e")])
    char = CharTokenizer("abc")
    with pytest.raises(ValueError, match=r"ids holds token ids in \[0, 3\]"):  # was an IndexError
        char.decode([0, 3])
    with pytest.raises(ValueError, match="ids holds token ids"):  # was the last character, silently
        char.decode([-1])
    with pytest.raises(ValueError, match="ids holds token ids"):  # was 'bytes must be in range(0, 256)'
        ByteTokenizer().decode([256])
    gpt2 = GPT2Tokenizer(tmp_path)
    with pytest.raises(ValueError, match="ids holds token ids"):  # was a KeyError
        gpt2.decode([gpt2.vocab_size])


def test_encode_names_text_it_cannot_encode():
    for tok in (ByteTokenizer(), CharTokenizer("ab")):
        with pytest.raises(TypeError, match="text must be a str"):
            tok.encode(None)
    with pytest.raises(ValueError, match="text is not encodable as UTF-8"):  # was a bare UnicodeEncodeError
        ByteTokenizer().encode("a\ud800")


@pytest.mark.parametrize("vocab, merges, match", [
    ("{'a': 1", "#version: 0.2\n", "is not readable"),  # was a JSONDecodeError naming no file
    (None, "#version: 0.2\nx y\n", "merge 0 .* not two symbols"),  # was a KeyError at the first encode
    (json.dumps({"a": 0}), "#version: 0.2\n", "lacks the symbols of 255 byte"),  # was a KeyError at encode
])
def test_gpt2_files_that_do_not_fit_are_named(tmp_path, vocab, merges, match):
    from tests.lm.test_data import write_gpt2_files
    write_gpt2_files(tmp_path, [("h", "e")])
    if vocab is not None:
        (tmp_path / "encoder.json").write_text(vocab)
    (tmp_path / "vocab.bpe").write_text(merges)
    with pytest.raises(ValueError, match=match) as info:
        GPT2Tokenizer(tmp_path)
    assert str(tmp_path) in str(info.value)


def test_generate_at_a_tiny_temperature_and_with_a_foreign_generator():
    torch.manual_seed(0)
    enc = XLSTMConfig(d_model=16, layout="m", mlstm={"num_heads": 2})
    model = XLSTMLM(LMConfig(vocab_size=11, pad_vocab_multiple=8, encoder=enc)).eval()
    prompt = torch.zeros(2, 3, dtype=torch.long)
    out = generate(model, prompt, 4, temperature=1e-30)  # was a RuntimeError: probabilities inf/nan
    assert out.shape == (2, 7) and torch.equal(out, generate(model, prompt, 4, greedy=True))
    with pytest.raises(TypeError, match="generator"):
        generate(model, prompt, 2, generator=np.random.default_rng(0))
    with pytest.raises(TypeError, match="temperature"):
        generate(model, prompt, 2, temperature="hot")


# ------------------------------------------------------------------------------------- loaders
@pytest.mark.parametrize("header, match", [
    ("@classLabel", "@classLabel must be 'true'"),  # was an IndexError
    ("@dimensions x\n@classLabel false", "@dimensions says 'x'"),  # was int()'s ValueError, no file named
])
def test_ts_headers_that_do_not_parse_are_named(tmp_path, header, match):
    path = tmp_path / "bad.ts"
    path.write_text(f"{header}\n@data\n1,2,3\n")
    with pytest.raises(ValueError, match=match) as info:
        load_ts(path)
    assert str(path) in str(info.value)


def test_a_ts_folder_and_a_non_path_are_named(tmp_path):
    with pytest.raises(ValueError, match="is a folder"):  # was an IsADirectoryError
        load_ts(tmp_path)
    with pytest.raises(TypeError, match="path must be a str"):
        load_ts(3)


@pytest.mark.parametrize("text, match", [
    ("", "is not a readable CSV file"),  # was pandas' EmptyDataError naming no file
    ("date,a\n2024-01-01,1\n2024-01-02,1,2,3\n", "is not a readable CSV file"),  # a ParserError naming no file
    ("date,a\n2024-01-01,1\nsoon,2\n", "time_col 'date' of .* holds values that are not timestamps"),
])
def test_csv_that_does_not_parse_is_named(tmp_path, text, match):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=match) as info:
        load_csv(path)
    assert str(path) in str(info.value)


def test_csv_rows_are_sorted_by_time_as_documented(tmp_path):
    path = tmp_path / "unsorted.csv"
    path.write_text("date,a\n2024-01-01 02:00,3\n2024-01-01 00:00,1\n2024-01-01 01:00,2\n")
    frame = load_csv(path)
    assert frame.index.is_monotonic_increasing and frame["a"].tolist() == [1, 2, 3]


def test_classifier_label_errors_name_y():
    with pytest.raises(ValueError, match=r"^y: Unknown label type: continuous"):  # scikit-learn's, naming nothing
        XLSTMClassifier(max_epochs=1, verbose=0).fit(np.zeros((4, 3)), [0.1, 0.2, 0.3, 0.4])


@pytest.mark.parametrize("val_size", [2, 0.9])
def test_a_validation_split_too_small_for_stratifying_every_class(val_size):
    """scikit-learn refused to stratify (naming no argument) when either side had fewer rows than classes."""
    X, y = np.random.default_rng(0).standard_normal((6, 4)), [0, 1, 2] * 2
    clf = XLSTMClassifier(val_size=val_size, max_epochs=1, d_model=8, num_heads=2, verbose=0).fit(X, y)
    assert clf.predict(X).shape == (6,)


def test_a_history_shorter_than_the_lookback_names_y(forecaster):
    with pytest.raises(ValueError, match="^y: history shorter than lookback"):
        forecaster.predict(y=wide(T=5))


@pytest.mark.parametrize("byte", [b"M", b"J", b"\x95"])
def test_a_one_byte_model_file_is_named(tmp_path, byte):
    """A damaged file of one pickle opcode made the weights-only unpickler raise struct.error."""
    path = tmp_path / "one.pt"
    path.write_bytes(byte)
    with pytest.raises(ValueError, match="one.pt.* is not a readable"):
        XLSTMForecaster.load(path)
