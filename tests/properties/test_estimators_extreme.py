"""Extreme values through the estimators: series and sequences of magnitude 1e6 and 1e-6 (around 0 and around a
large level), constant ones, and ones with a single non-zero value. fit and predict give finite answers (and the
forecaster's stay on the data's scale), or a clear ValueError."""
import numpy as np
import pandas as pd
import pytest

from tests.properties.outcome import works_or_names
from xseq import XLSTMClassifier, XLSTMForecaster

FAST_F = dict(d_model=8, num_heads=2, layout="ms", patch_len=4, max_epochs=1, batch_size=32, max_train_windows=64,
              threads=1, progress_bar=False, verbose=0)
FAST_C = dict(d_model=8, num_heads=2, layout="ms", max_epochs=1, batch_size=8, threads=1, progress_bar=False,
              verbose=0)
T = 80
KINDS = ["1e6", "1e-6", "level_1e6_noise_1e-3", "constant", "constant_1e-6", "constant_1e6", "constant_zero",
         "single_spike", "single_spike_last", "1e12", "1e-12", "1e200"]


def series(kind: str, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = np.sin(np.arange(T) / 4) + 0.1 * rng.standard_normal(T)
    if kind.startswith("level"):
        return 1e6 + 1e-3 * base
    if kind.startswith("constant"):
        levels = {"constant": 3.25, "constant_1e-6": 1.7e-6, "constant_1e6": 2.3e6, "constant_zero": 0.0}
        return np.full(T, levels[kind])
    if kind.startswith("single_spike"):
        v = np.zeros(T)
        v[-1 if kind.endswith("last") else T // 3] = 5.0
        return v
    return float(kind) * base


def check_on_scale(kind: str, v: np.ndarray, fc: np.ndarray) -> None:
    """Forecasts stay on the data's scale: within a few times its range (or level, for a constant series) of its
    mean; a series of zeros has no scale, its forecasts stay within the network's O(1) output."""
    assert np.isfinite(fc).all(), f"{kind}: a non-finite forecast"
    bound = 10 * max(v.max() - v.min(), abs(v.mean())) if v.any() else 1.0
    assert np.abs(fc - v.mean()).max() <= bound, (kind, fc)


def fit_and_check(y: pd.DataFrame) -> XLSTMForecaster:
    f = XLSTMForecaster(4, 16, quantiles=[0.1, 0.9], val_size=0.2, **FAST_F)
    ok, _ = works_or_names(lambda: f.fit(y), ["y"])
    assert ok, "the forecaster refused finite data"
    for out in (f.predict(), f.predict(y=y.iloc[:-7]), f.cross_validate(y, n_windows=3).forecasts):
        assert np.isfinite(out.select_dtypes("number").to_numpy()).all(), "a non-finite forecast"
    return f


def test_forecaster_extreme_values_in_one_panel():
    """Every kind as one series of a panel (one global model, per-series scaling)."""
    y = pd.DataFrame({k: series(k) for k in KINDS}, index=pd.date_range("2024-01-01", periods=T, freq="h"))
    fc = fit_and_check(y).predict()
    for k in KINDS:
        check_on_scale(k, y[k].to_numpy(), fc[k].to_numpy())


@pytest.mark.parametrize("kind", ["1e6", "1e-6", "constant_1e-6", "1e200"])
def test_forecaster_extreme_values_alone(kind):
    """A series of that kind beside one of the opposite magnitude: the ridge fit and the network see little else."""
    v = series(kind)
    y = pd.DataFrame({"s": v, "other": series("1e-6" if kind != "1e-6" else "1e6", 1)},
                     index=pd.date_range("2024-01-01", periods=T, freq="h"))
    check_on_scale(kind, v, fit_and_check(y).predict()["s"].to_numpy())


@pytest.mark.parametrize("kind", KINDS)
def test_classifier_extreme_values(kind):
    rng = np.random.default_rng(0)
    X = np.stack([np.stack([series(kind, i), rng.standard_normal(T)], axis=1)[:30] for i in range(12)])
    y = np.array(["a", "b"] * 6)
    clf = XLSTMClassifier(**FAST_C)
    ok, e = works_or_names(lambda: clf.fit(X, y), ["X"])
    if np.abs(X).max() > np.finfo(np.float32).max:  # the network computes in float32: a clear refusal
        assert not ok and "float32" in str(e)
        return
    assert ok, "the classifier refused finite data"
    proba = clf.predict_proba(X)
    assert np.isfinite(proba).all() and np.allclose(proba.sum(1), 1)
    assert set(clf.predict(X * 1.0)) <= {"a", "b"}
    # inputs at the far end of float32 at predict time: finite probabilities, or a clear refusal
    ok, out = works_or_names(lambda: clf.predict_proba(X * 1e30), ["X"])
    if ok:
        assert np.isfinite(out).all()
