"""XLSTMForecaster on small real data (statsmodels' monthly CO2 and ETTh1 when present), few steps."""
import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from xseq import XLSTMForecaster

SMALL = dict(patch_len=8, d_model=16, layout="ms", max_epochs=2, batch_size=64, progress_bar=False, threads=1)


@pytest.fixture(scope="module")
def co2():
    import statsmodels.api as sm

    s = sm.datasets.co2.load_pandas().data["co2"].resample("MS").mean().interpolate()
    s.index.freq = "MS"
    return pd.DataFrame({"co2": s})


@pytest.fixture(scope="module")
def two_series(co2):
    df = co2.copy()
    df["co2_detrended"] = df["co2"] - df["co2"].rolling(12, min_periods=1).mean()
    return df


@pytest.fixture(scope="module")
def fitted(two_series):
    return XLSTMForecaster(12, 48, **SMALL).fit(two_series)


def to_long(df):
    out = df.rename_axis("ds").reset_index().melt(id_vars="ds", var_name="unique_id", value_name="y")
    return out[["unique_id", "ds", "y"]]


def test_predict_format_and_index(fitted, two_series):
    fc = fitted.predict()
    assert list(fc.columns) == ["co2", "co2_detrended"] and len(fc) == 12
    assert fc.index[0] == two_series.index[-1] + pd.offsets.MonthBegin(1)
    assert fc.index.freq == pd.offsets.MonthBegin(1)
    assert np.isfinite(fc.to_numpy()).all()


def test_predict_default_equals_predict_on_the_fit_data(fitted, two_series):
    pd.testing.assert_frame_equal(fitted.predict(), fitted.predict(y=two_series))


def test_predict_on_longer_history_forecasts_from_its_end_without_refit(two_series):
    f = XLSTMForecaster(12, 48, **SMALL).fit(two_series.iloc[:-24])
    weights = {k: v.clone() for k, v in f.net_.state_dict().items()}
    fc = f.predict(y=two_series)
    assert fc.index[0] == two_series.index[-1] + pd.offsets.MonthBegin(1)
    assert all((weights[k] == v).all() for k, v in f.net_.state_dict().items())
    assert not fc.equals(f.predict())


def test_wide_and_long_give_the_same_forecasts(two_series):
    a = XLSTMForecaster(12, 48, **SMALL).fit(two_series).predict()
    b = XLSTMForecaster(12, 48, **SMALL).fit(to_long(two_series)).predict()
    assert list(b.columns) == ["unique_id", "ds", "y"]
    np.testing.assert_allclose(to_long(a)["y"].to_numpy(), b["y"].to_numpy(), rtol=1e-6, atol=1e-6)


def test_not_fitted():
    with pytest.raises(NotFittedError):
        XLSTMForecaster(12, 48).predict()


def test_clone_pickle_save_load(fitted, tmp_path, two_series):
    c = clone(fitted)
    assert c.get_params() == fitted.get_params() and not hasattr(c, "net_")
    again = pickle.loads(pickle.dumps(fitted))
    pd.testing.assert_frame_equal(again.predict(), fitted.predict())
    path = tmp_path / "model.pt"
    fitted.save(path)
    loaded = XLSTMForecaster.load(path)
    pd.testing.assert_frame_equal(loaded.predict(), fitted.predict())
    pd.testing.assert_frame_equal(loaded.predict(y=two_series.iloc[:-5]), fitted.predict(y=two_series.iloc[:-5]))


def test_never_worse_than_linear_on_validation(fitted):
    assert fitted.best_val_loss_ <= fitted.initial_val_loss_ and fitted.best_val_mse_ > 0


def test_cross_validate(fitted, two_series):
    bt = fitted.cross_validate(two_series, n_windows=5, step=3)
    assert set(bt.forecasts["unique_id"]) == {"co2", "co2_detrended"}
    assert len(bt.forecasts) == 2 * 5 * 12
    assert (bt.forecasts.groupby("unique_id")["cutoff"].nunique() == 5).all()
    last = bt.forecasts[bt.forecasts["cutoff"] == bt.forecasts["cutoff"].max()]
    expected = fitted.predict(y=two_series.iloc[:-12])
    np.testing.assert_allclose(last[last.unique_id == "co2"]["forecast"].to_numpy(), expected["co2"].to_numpy(),
                               rtol=1e-6)
    err = bt.forecasts["forecast"] - bt.forecasts["y"]
    assert bt.metrics.loc["all", "mse"] == pytest.approx(float((err ** 2).mean()))


def test_last_token_head(two_series):
    f = XLSTMForecaster(12, 48, head="last", **SMALL).fit(two_series)
    assert f.net_.head.in_features == 16 and np.isfinite(f.predict().to_numpy()).all()


def test_quantiles_are_monotone(two_series):
    f = XLSTMForecaster(12, 48, quantiles=[0.1, 0.9], **SMALL).fit(two_series)
    fc = f.predict()
    assert {"co2", "co2_q0.1", "co2_q0.5", "co2_q0.9"} <= set(fc.columns)
    assert (fc["co2_q0.1"] <= fc["co2_q0.5"]).all() and (fc["co2_q0.5"] <= fc["co2_q0.9"]).all()
    np.testing.assert_allclose(fc["co2"], fc["co2_q0.5"])


def test_covariates(co2):
    y = co2.iloc[:-12]
    month = pd.DataFrame({"month_sin": np.sin(2 * np.pi * co2.index.month / 12),
                          "month_cos": np.cos(2 * np.pi * co2.index.month / 12)}, index=co2.index)
    f = XLSTMForecaster(12, 48, **SMALL).fit(y, X=month.iloc[:-12])
    fc = f.predict(X=month)
    assert len(fc) == 12 and np.isfinite(fc.to_numpy()).all()
    with pytest.raises(ValueError, match="X must cover"):
        f.predict()
    with pytest.raises(ValueError, match="does not cover the forecast horizon"):
        f.predict(X=month.iloc[:-1])


@pytest.mark.parametrize("bad_y,match", [
    (lambda y: y.iloc[::-1], "unsorted timestamps"),
    (lambda y: pd.concat([y, y.iloc[[3]]]).sort_index(), "duplicated timestamps"),
    (lambda y: y.assign(co2=y["co2"].where(y.index != y.index[7])), "missing value"),
    (lambda y: y.assign(site="Mauna Loa"), "non-numeric"),
    (lambda y: y.iloc[:50], "history of series"),
])
def test_bad_fit_input(co2, bad_y, match):
    with pytest.raises(ValueError, match=match):
        XLSTMForecaster(12, 48, **SMALL).fit(bad_y(co2))


def test_bad_predict_input(fitted, two_series):
    with pytest.raises(ValueError, match="series the forecaster was fitted on"):
        fitted.predict(y=two_series[["co2"]])
    with pytest.raises(ValueError, match="history shorter than lookback"):
        fitted.predict(y=two_series.iloc[:30])
    with pytest.raises(ValueError, match="X given"):
        fitted.predict(X=two_series)


@pytest.mark.parametrize("params,match", [
    (dict(horizon=0), "horizon"), (dict(loss="huber"), "loss"), (dict(quantiles=[0.1, 1.5]), "quantiles"),
    (dict(ridge=-1), "ridge"), (dict(dropout=1.0), "dropout"), (dict(head="mean"), "head"),
])
def test_bad_params(co2, params, match):
    kw = dict(horizon=12, lookback=48) | params
    with pytest.raises(ValueError, match=match):
        XLSTMForecaster(**kw).fit(co2)


def test_cross_series_linear_term(two_series):
    f = XLSTMForecaster(12, 48, cross_series=6, **SMALL).fit(two_series)
    assert f.net_.skip.in_features == 48 + 2 * 6
    fc = f.predict()
    bt = f.cross_validate(two_series, n_windows=3, step=2)
    last = bt.forecasts[bt.forecasts["cutoff"] == bt.forecasts["cutoff"].max()]
    expected = f.predict(y=two_series.iloc[:-12])
    np.testing.assert_allclose(last[last.unique_id == "co2_detrended"]["forecast"].to_numpy(),
                               expected["co2_detrended"].to_numpy(), rtol=1e-6, atol=1e-9)
    assert np.isfinite(fc.to_numpy()).all()
    with pytest.raises(ValueError, match="wide frame"):
        XLSTMForecaster(12, 48, cross_series=6, **SMALL).fit(to_long(two_series))


def test_window_gather_aligns_cross_series_blocks():
    import torch

    from xseq.forecast.training import WindowData

    T, L, H, K = 20, 5, 2, 3
    values = np.concatenate([np.arange(T) * 1.0, 100 + np.arange(T) ** 2.0])
    data = WindowData(values, None, L, H, cross=K, series_len=T, n_series=2)
    starts = torch.tensor([4, T + 7])  # series 0 at t0 = 4, series 1 at t0 = 7
    past, future, _, _, cross = data.gather(starts)
    for row, t0 in zip(range(2), (4, 7)):
        origin = t0 + L
        blocks = [values[j * T + origin - K: j * T + origin] for j in range(2)]
        expected = np.concatenate([b - b.mean() for b in blocks])
        np.testing.assert_allclose(cross[row].numpy(), expected, atol=1e-4)  # float32 of values ~ 400
    np.testing.assert_allclose(past[1].numpy(), values[T + 7: T + 12])
    np.testing.assert_allclose(future[1].numpy(), values[T + 12: T + 14])
