"""Hostile input, generated (Hypothesis), for the estimators' public entry points: XLSTMForecaster.fit, predict and
cross_validate on generated wide and long frames (lengths 0, 1, huge; NaN/inf/huge values; unsorted, duplicated,
NaT, float or string indices; object, string, bool, complex columns; unicode, int or duplicated column names), and
XLSTMClassifier.fit, predict and predict_proba on generated sequence collections. Every call works (finite
forecasts of the documented shape; labels among classes_, probabilities summing to 1) or raises ValueError/
TypeError naming the argument."""
import numpy as np
import pandas as pd
import pytest

from tests.properties.outcome import all_finite, examples, works_or_names

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from tests.properties.frames import frames  # noqa: E402
from xseq import XLSTMClassifier, XLSTMForecaster  # noqa: E402

FAST_F = dict(d_model=8, num_heads=2, layout="m", patch_len=4, max_epochs=1, batch_size=32, max_train_windows=32,
              threads=1, progress_bar=False, verbose=0, patience=1)
FAST_C = dict(d_model=8, num_heads=2, layout="m", max_epochs=1, batch_size=8, threads=1, progress_bar=False,
              verbose=0)
F_NAMES = ["y", "fill", "horizon", "lookback", "min_context", "val_size", "X"]
CV_NAMES = ["y", "n_windows", "step"]


def check_backtest(bt, rows: int) -> None:
    """Finite forecasts; metrics without NaN that agree with the forecasts (an mse of errors beyond 1e154 is inf,
    as float64 says: its true value is not representable)."""
    assert len(bt.forecasts) == rows and all_finite(bt.forecasts)
    assert not bt.metrics.isna().to_numpy().any() and np.isfinite(bt.metrics["mae"]).all()
    err = bt.forecasts["forecast"].to_numpy() - bt.forecasts["y"].to_numpy()
    assert bt.metrics.loc["all", "mse"] == pytest.approx(float(np.mean(err ** 2)), rel=1e-9)


def check_forecast(f: XLSTMForecaster, out: pd.DataFrame, horizon: int) -> None:
    n = len(f.series_names_)
    if f.format_ == "wide":
        assert out.shape == (horizon, n) and list(out.columns) == list(f.series_names_)
    else:
        assert len(out) == n * horizon and list(out.columns[:3]) == ["unique_id", "ds", "y"]
    assert all_finite(out), "a forecast of finite (or filled) input holds NaN or inf"


@examples(8, 0.25)
@given(frame=frames(), fill=st.sampled_from([None, "ffill", "interpolate", "zero", "bogus"]),
       horizon=st.sampled_from([1, 4]), val_size=st.sampled_from([0, 0.2]))
def test_forecaster_fit_predict_cross_validate_hostile(frame, fill, horizon, val_size):
    y, desc = frame
    f = XLSTMForecaster(horizon, 8, fill=fill, val_size=val_size, **FAST_F)
    ok, _ = works_or_names(lambda: f.fit(y), F_NAMES, "fit")
    if not ok:
        return
    check_forecast(f, f.predict(), horizon)
    check_forecast(f, f.predict(y), horizon)
    ok, bt = works_or_names(lambda: f.cross_validate(y, n_windows=2, step=1), CV_NAMES, "cross_validate")
    if ok:
        check_backtest(bt, 2 * horizon * len(f.series_names_))


# ---------------------------------------------------------------------------------- predict / cross_validate
T0 = 60


def base_wide(T=T0):
    t = np.arange(T)
    return pd.DataFrame({"a": 10 + np.sin(t / 3), "ü": 5 + np.cos(t / 5)},
                        index=pd.date_range("2024-01-01", periods=T, freq="h"))


def to_long(wide):
    return wide.rename_axis("ds").reset_index().melt(id_vars="ds", var_name="unique_id", value_name="y")[
        ["unique_id", "ds", "y"]]


_FITTED = {}


def fitted(fmt: str) -> XLSTMForecaster:
    if fmt not in _FITTED:
        y = base_wide() if fmt == "wide" else to_long(base_wide())
        _FITTED[fmt] = XLSTMForecaster(3, 8, val_size=0, **FAST_F).fit(y)
    return _FITTED[fmt]


MUTATIONS = st.sampled_from(["none", "truncate", "extend", "poison", "reorder_columns", "rename", "drop_column",
                             "add_column", "shuffle", "duplicate_row", "nat", "int_index", "tz", "object", "bool",
                             "complex", "strings", "empty", "huge_values", "constant"])


def mutate(wide: pd.DataFrame, how: str, arg: int, rng) -> pd.DataFrame:
    y = wide.copy()
    T = len(y)
    if how == "truncate":
        return y.iloc[:arg % (T + 1)]
    if how == "extend":
        return base_wide(T + 1 + arg)
    if how == "poison":
        y.iloc[arg % T, arg % 2] = [np.nan, np.inf, -np.inf, 1e300][arg % 4]
    elif how == "reorder_columns":
        y = y[y.columns[::-1]]
    elif how == "rename":
        y.columns = ["a", "b"]
    elif how == "drop_column":
        y = y[["a"]]
    elif how == "add_column":
        y["extra"] = 1.0
    elif how == "shuffle":
        y = y.iloc[rng.permutation(T)]
    elif how == "duplicate_row":
        y = pd.concat([y, y.iloc[[arg % T]]])
    elif how == "nat":
        idx = y.index.to_series().reset_index(drop=True)
        idx.iloc[arg % T] = pd.NaT
        y.index = pd.DatetimeIndex(idx)
    elif how == "int_index":
        y = y.reset_index(drop=True)
    elif how == "tz":
        y.index = y.index.tz_localize("UTC")
    elif how == "object":
        y = y.astype(object)
    elif how == "bool":
        y = y > 10
    elif how == "complex":
        y = y + 1j
    elif how == "strings":
        y = y.astype(str)
    elif how == "empty":
        y = y.iloc[:0]
    elif how == "huge_values":
        y = y * 1e200
    elif how == "constant":
        y[:] = 7.0
    return y


@examples(60)
@given(fmt=st.sampled_from(["wide", "long"]), how=MUTATIONS, arg=st.integers(0, 1000),
       n_windows=st.sampled_from([1, 2, 5, 0, -1, 2.5, True, np.int64(2), 10**6]),
       step=st.sampled_from([1, 3, 0, 1.5, None]), seed=st.integers(0, 2**16))
def test_forecaster_predict_cross_validate_hostile(fmt, how, arg, n_windows, step, seed):
    f = fitted(fmt)
    y = mutate(base_wide(), how, arg, np.random.default_rng(seed))
    if fmt == "long":
        y = to_long(y) if len(y.columns) and y.index.name is None else y
    ok, out = works_or_names(lambda: f.predict(y=y), ["y"], "predict")
    if ok:
        check_forecast(f, out, f.horizon)
    ok, bt = works_or_names(lambda: f.cross_validate(y, n_windows=n_windows, step=step), CV_NAMES,
                            "cross_validate")
    if ok:
        check_backtest(bt, int(n_windows) * f.horizon * len(f.series_names_))


# ---------------------------------------------------------------------------------- classifier
@st.composite
def sequences(draw, channels=st.sampled_from([1, 2, 3])):
    """(X, y, description): generated sequence collections and labels."""
    if draw(st.integers(0, 2)) == 0:  # a third: ordinary collections, hostile only in scale and labels
        layout = draw(st.sampled_from(["array2d", "array3d", "list", "tensor"]))
        n, T, C = 6, draw(st.sampled_from([1, 3, 20])), draw(channels)
        dtype = draw(st.sampled_from(["float64", "float32", "int64", "bool"]))
        poison = draw(st.sampled_from([None, 1e30, 1e-6, 1e6, "constant"]))
        labels = draw(st.sampled_from(["str", "int", "float_discrete", "bool", "unicode", "mixed"]))
    else:
        layout = draw(st.sampled_from(["array2d", "array3d", "list", "list_mixed_dims", "object_array", "dataframe",
                                       "tensor", "scalar", "nested_ragged"]))
        n, T = draw(st.sampled_from([0, 1, 2, 6])), draw(st.sampled_from([0, 1, 3, 20]))
        C = draw(st.sampled_from([0, 1, 2, 3]))
        dtype = draw(st.sampled_from(["float64", "float32", "int64", "bool", "str", "object", "complex", "float16"]))
        poison = draw(st.sampled_from([None, None, "nan", "inf", 1e39, 1e30, 1e-6, 1e6, "constant"]))
        labels = draw(st.sampled_from(["str", "int", "float_discrete", "float_continuous", "mixed", "bool", "none",
                                       "nan", "one_class", "short", "2d", "unicode"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    lengths = [T if layout != "list" else draw(st.sampled_from([T, 1, 5])) for _ in range(n)]
    seqs = [rng.standard_normal((L_, C)) for L_ in lengths]
    for s in seqs:
        if poison == "constant":
            s[:] = 2.0
        elif isinstance(poison, float):
            s *= poison
    if seqs and seqs[0].size and poison in ("nan", "inf"):
        seqs[0].flat[0] = float(poison)
    cast = {"str": lambda a: a.astype(str), "object": lambda a: a.astype(object),
            "complex": lambda a: a + 1j}.get(dtype, lambda a: a.astype(dtype))
    seqs = [cast(s) for s in seqs]
    if layout == "array2d":
        X = np.stack([s[:, 0] for s in seqs]) if n and C else cast(np.zeros((n, T)))
    elif layout == "array3d":
        X = np.stack(seqs) if n else cast(np.zeros((0, T, C)))
    elif layout == "list":
        X = seqs
    elif layout == "list_mixed_dims":
        X = [s if i % 2 else s[:, :1] for i, s in enumerate(seqs)]
    elif layout == "object_array":
        X = np.empty(n, dtype=object)
        for i, s in enumerate(seqs):
            X[i] = s
    elif layout == "dataframe":
        X = pd.DataFrame(np.stack([s[:, 0] for s in seqs]) if n and C else np.zeros((n, T)))
    elif layout == "tensor":
        import torch
        X = torch.as_tensor(np.stack(seqs).astype(np.float32)) if n and dtype not in ("str", "object", "complex") \
            else seqs
    elif layout == "scalar":
        X = 3.0
    else:
        X = [[[1.0, 2.0], [3.0]] for _ in range(n)]
    y = {"str": [f"c{i % 2}" for i in range(n)], "int": [i % 3 for i in range(n)],
         "float_discrete": [float(i % 2) for i in range(n)], "float_continuous": list(rng.standard_normal(n)),
         "mixed": [("a" if i % 2 else 1) for i in range(n)], "bool": [bool(i % 2) for i in range(n)],
         "none": None, "nan": [np.nan if i == 0 else 1.0 for i in range(n)], "one_class": ["x"] * n,
         "short": [f"c{i % 2}" for i in range(max(n - 1, 0))], "2d": np.zeros((n, 2)),
         "unicode": [["ä", "🙂", "ß"][i % 3] for i in range(n)]}[labels]
    return X, y, dict(layout=layout, n=n, T=T, C=C, dtype=dtype, poison=poison, labels=labels)


def check_predictions(clf, X) -> None:
    proba = clf.predict_proba(X)
    n = len(X)
    assert proba.shape == (n, len(clf.classes_)) and np.isfinite(proba).all()
    np.testing.assert_allclose(proba.sum(1), 1.0, atol=1e-6)
    pred = clf.predict(X)
    assert pred.shape == (n,) and set(pred.tolist()) <= set(clf.classes_.tolist())


@examples(8, 0.25)
@given(data=sequences(), val_size=st.sampled_from([0, 0.0, 0.3, 2]))
def test_classifier_fit_predict_hostile(data, val_size):
    X, y, desc = data
    clf = XLSTMClassifier(val_size=val_size, **FAST_C)
    ok, _ = works_or_names(lambda: clf.fit(X, y), ["X", "y", "val_size"], "fit")
    if ok:
        check_predictions(clf, X)


_CLF = {}


def fitted_classifier():
    if not _CLF:
        rng = np.random.default_rng(0)
        X = rng.standard_normal((12, 10, 2))
        y = np.array(["up", "down"] * 6)
        X[y == "up"] += 1.0
        _CLF["clf"] = XLSTMClassifier(**FAST_C).fit(X, y)
    return _CLF["clf"]


@examples(60)
@given(data=sequences(channels=st.sampled_from([2, 2, 1, 3])))
def test_classifier_predict_hostile(data):
    X, _, desc = data
    clf = fitted_classifier()  # fitted on 2 channels: inputs of another count must be refused by name
    ok, _ = works_or_names(lambda: clf.predict_proba(X), ["X"], "predict_proba")
    if ok:
        assert desc["C"] == 2 and desc["layout"] in ("array3d", "list", "object_array", "tensor")
        check_predictions(clf, X)
