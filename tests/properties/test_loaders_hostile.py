"""Hostile input, generated (Hypothesis), for the data loaders: .ts files (xseq.datasets.load_ts) built from
generated headers and cases, mutated line by line or replaced by arbitrary text or bytes, and CSV files
(xseq.datasets.load_csv) with generated headers (unicode, duplicated, empty), rows (ragged, empty cells, strings,
NaN/inf), timestamps (unsorted, duplicated, unparseable, mixed time zones) and encodings, whose frames then go to
the forecaster's pandas input (xseq.forecast.frames.read_panel). Every call works (a consistent dataset; a frame
with a sorted time index) or raises ValueError/TypeError naming the file or the argument."""
import numpy as np
import pandas as pd
import pytest

from tests.properties.outcome import examples, works_or_names

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from xseq.datasets import load_csv, load_ts  # noqa: E402
from xseq.forecast.frames import read_panel  # noqa: E402

HEADERS = ["@problemName Toy", "@timeStamps false", "@missing true", "@univariate true", "@dimensions 1",
           "@dimensions 2", "@dimensions x", "@equalLength true", "@seriesLength 4", "@classLabel true a b",
           "@classLabel false", "@classLabel", "@classLabel maybe", "@timeStamps true", "# a comment", "",
           "not a header", "@ünïcode ✓"]
VALUES = st.sampled_from(["1", "-2.5", "3e5", "?", "nan", "inf", "1e999", "", "x", " 4 ", "0x10", "١٢", "1,2"])


@st.composite
def clean_ts_text(draw):
    """A well-formed file, hostile only in its values (missing, huge, unicode labels) and lengths."""
    C, labelled = draw(st.integers(1, 3)), draw(st.booleans())
    lines = ["# generated", "@problemName Tøy", "@timeStamps false", f"@dimensions {C}",
             "@classLabel true a b ü" if labelled else "@classLabel false", "@data"]
    for i in range(draw(st.integers(1, 5))):
        T = draw(st.sampled_from([1, 3, 50]))
        chans = [",".join(draw(st.sampled_from(["1", "-2.5", "3e5", "?", "1e300", "0"])) for _ in range(T))
                 for _ in range(C)]
        lines.append(":".join(chans + ([["a", "b", "ü"][i % 3]] if labelled else [])))
    return "\n".join(lines) + "\n"


@st.composite
def ts_text(draw):
    header = draw(st.lists(st.sampled_from(HEADERS), max_size=6))
    has_data = draw(st.booleans() | st.just(True))
    lines = []
    n = draw(st.integers(0, 5))
    C = draw(st.integers(1, 2))
    for _ in range(n):
        chans = [",".join(draw(st.lists(VALUES, min_size=draw(st.sampled_from([0, 1, 4])), max_size=4)))
                 for _ in range(draw(st.sampled_from([C, C, 1, 3])))]
        label = draw(st.sampled_from(["a", "b", "c", "", None]))
        lines.append(":".join(chans + ([] if label is None else [label])))
    lines += draw(st.lists(st.sampled_from(["", "# late comment", "@data", "1:2:3:4:5", "\x00\x01"]), max_size=2))
    return "\n".join(header + (["@data"] if has_data else []) + lines) + "\n"


def check_ts(ds) -> None:
    X, y = ds
    cases = list(X) if isinstance(X, list) else list(X)
    assert cases and all(c.ndim == 2 for c in cases)
    assert len({c.shape[1] for c in cases}) == 1
    if isinstance(X, np.ndarray):
        assert X.ndim == 3
    if y is not None:
        assert len(y) == len(cases)


@examples(150)
@given(text=clean_ts_text() | ts_text() | st.text(max_size=200), raw=st.binary(max_size=60),
       use_raw=st.sampled_from([False, False, True]))
def test_load_ts_hostile(tmp_path_factory, text, raw, use_raw):
    path = tmp_path_factory.mktemp("ts") / "case.ts"
    if use_raw:
        path.write_bytes(raw)
    else:
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
    ok, ds = works_or_names(lambda: load_ts(path), [str(path)], "load_ts")
    if ok:
        check_ts(ds)


def test_load_ts_names_a_folder_and_a_bad_path(tmp_path):
    ok, e = works_or_names(lambda: load_ts(tmp_path), [str(tmp_path)])
    assert not ok
    ok, e = works_or_names(lambda: load_ts(5), ["path"])
    assert not ok and isinstance(e, TypeError)


CSV_NAMES = st.sampled_from(["date", "OT", "ü", "时间", "🙂", "", "a", "a", "1", "x,y", '"q"'])
CELLS = st.sampled_from(["1", "2.5", "", "nan", "inf", "-1e300", "abc", "TRUE", "1e999", "  3", "NaT"])
DATES = st.sampled_from(["2024-01-01 00:00", "2024-01-01 01:00", "2024-01-01 02:00", "2024-01-01", "01/02/2024",
                         "yesterday", "", "2024-01-01T00:00+01:00", "2024-01-01T00:00Z", "2024-13-45", "1e10"])


@st.composite
def clean_csv_text(draw):
    """date + series columns, hostile only in order, duplicates, gaps and values."""
    cols = draw(st.lists(st.sampled_from(["OT", "ü", "时间", "a", "🙂"]), min_size=1, max_size=3, unique=True))
    T = draw(st.sampled_from([1, 3, 24, 24]))
    stamps = pd.date_range("2024-01-01", periods=T, freq="h").strftime("%Y-%m-%d %H:%M").tolist()
    order = draw(st.sampled_from(["sorted", "sorted", "reversed", "duplicated"]))
    if order == "reversed":
        stamps = stamps[::-1]
    elif order == "duplicated" and T > 1:
        stamps[1] = stamps[0]
    gap = draw(st.booleans())  # one empty cell
    rows = [",".join([stamp] + [draw(st.sampled_from(["1", "2.5", "-3", "1e6", "1e-6", "1e300"])) for _ in cols])
            for stamp in stamps]
    if gap:
        rows[-1] = rows[-1].rsplit(",", 1)[0] + ","
    return "\n".join([",".join(["date"] + cols)] + rows) + "\n"


@st.composite
def csv_text(draw):
    cols = draw(st.lists(CSV_NAMES, min_size=0, max_size=4))
    rows = []
    for _ in range(draw(st.sampled_from([0, 1, 3, 8]))):
        width = draw(st.sampled_from([len(cols), len(cols), len(cols) + 1, max(len(cols) - 1, 0)]))
        cells = [draw(DATES)] + [draw(CELLS) for _ in range(max(width - 1, 0))] if width else []
        rows.append(",".join(cells))
    return "\n".join([",".join(cols)] + rows) + ("\n" if draw(st.booleans()) else "")


@examples(150)
@given(text=st.one_of(clean_csv_text(), clean_csv_text(), csv_text(), st.text(max_size=120)),
       time_col=st.sampled_from(["date", "date", "date", None, "OT", 3]),
       columns=st.sampled_from([None, None, None, ["OT"], "OT", ["a", "ü"], []]),
       encoding=st.sampled_from(["utf-8", "utf-8", "latin-1"]), fill=st.sampled_from([None, "ffill", "zero"]))
def test_load_csv_and_read_panel_hostile(tmp_path_factory, text, time_col, columns, encoding, fill):
    path = tmp_path_factory.mktemp("csv") / "case.csv"
    path.write_bytes(text.encode(encoding, errors="replace"))
    ok, frame = works_or_names(lambda: load_csv(path, time_col=time_col, columns=columns),
                               [str(path), "time_col", "columns"], "load_csv")
    if not ok:
        return
    assert isinstance(frame, pd.DataFrame)
    if time_col is not None:
        assert frame.index.name == time_col and isinstance(frame.index, pd.DatetimeIndex)
        assert frame.index.dropna().is_monotonic_increasing  # "made the sorted index"
    ok, panel = works_or_names(lambda: read_panel(frame, fill=fill), ["y", "fill"], "read_panel")
    if ok:
        assert all(np.isfinite(s.values).all() for s in panel.series)
