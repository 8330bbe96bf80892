import numpy as np
import pandas as pd
import pytest

from xseq.forecast.frames import read_panel


def wide(n=50, cols=("a", "b"), start="2020-01-01", freq="h"):
    idx = pd.date_range(start, periods=n, freq=freq)
    rng = np.random.default_rng(0)
    return pd.DataFrame({c: rng.normal(size=n).cumsum() for c in cols}, index=idx)


def to_long(df):
    out = df.rename_axis("ds").reset_index().melt(id_vars="ds", var_name="unique_id", value_name="y")
    return out[["unique_id", "ds", "y"]]


def test_wide_and_long_read_the_same_series():
    df = wide()
    a, b = read_panel(df), read_panel(to_long(df))
    assert a.fmt == "wide" and b.fmt == "long" and a.names == b.names == ["a", "b"]
    for s, t in zip(a.series, b.series):
        np.testing.assert_array_equal(s.values, t.values)
        assert s.index.equals(t.index)
    assert a.freq == b.freq == pd.tseries.frequencies.to_offset("h")


def test_range_index_gives_an_integer_step():
    df = wide().reset_index(drop=True)
    assert read_panel(df).freq == 1


@pytest.mark.parametrize("mutate,match", [
    (lambda d: d.iloc[::-1], "unsorted timestamps"),
    (lambda d: pd.concat([d, d.iloc[[3]]]).sort_index(), "duplicated timestamps"),
    (lambda d: d.assign(a=d["a"].where(d.index != d.index[5])), "missing value"),
    (lambda d: d.assign(c="x"), "non-numeric column"),
    (lambda d: d.drop(d.index[[10, 20]]), "irregular timestamps"),
    (lambda d: d.set_axis([str(i) for i in range(len(d))]), "indexed by timestamps"),
])
def test_bad_wide_input(mutate, match):
    with pytest.raises(ValueError, match=match):
        read_panel(mutate(wide()))


def test_missing_values_fill_option():
    df = wide()
    df.iloc[5, 0] = np.nan
    panel = read_panel(df, fill="interpolate")
    assert np.isfinite(panel.series[0].values).all()
    with pytest.raises(ValueError, match="fill must be one of"):
        read_panel(df, fill="mean")


def test_bad_long_input():
    long = to_long(wide())
    with pytest.raises(ValueError, match="unsorted"):
        read_panel(long.iloc[::-1])
    with pytest.raises(ValueError, match="only the columns"):
        read_panel(long.assign(extra=1.0))
    with pytest.raises(ValueError, match="must be a pandas DataFrame"):
        read_panel(long.to_numpy())
