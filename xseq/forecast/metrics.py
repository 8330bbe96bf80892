"""The M4 competition's accuracy measures and its Naive2 benchmark (the OWA denominator).

  sMAPE = 200/h * sum |y - f| / (|y| + |f|)
  MASE  = (1/h * sum |y - f|) / (1/(n - m) * sum_{t>m} |x_t - x_{t-m}|)   m: the frequency's period
  OWA   = (sMAPE / sMAPE_Naive2 + MASE / MASE_Naive2) / 2, each averaged over all series first
Naive2 is the naive forecast of the seasonally adjusted series (classical multiplicative decomposition),
reseasonalised, where a 90% autocorrelation test at lag m finds the series seasonal; otherwise plain naive."""
from __future__ import annotations

import numpy as np


def smape(y: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Per series (rows): the mean of 200 |y - f| / (|y| + |f|), in percent."""
    den = np.abs(y) + np.abs(f)
    ratio = np.divide(np.abs(y - f), den, out=np.zeros_like(den, dtype=float), where=den > 0)
    return 200.0 * ratio.mean(axis=1)


def mase(histories: list[np.ndarray], y: np.ndarray, f: np.ndarray, season: int) -> np.ndarray:
    """Per series: MAE of f scaled by the in-sample seasonal naive MAE of its history (period `season`)."""
    scale = np.array([np.abs(h[season:] - h[:-season]).mean() if len(h) > season else np.nan for h in histories])
    bad = np.flatnonzero(~(scale > 0))
    if len(bad):
        raise ValueError(f"MASE is undefined for series {bad[:5].tolist()} (by position): their history has no "
                         f"non-zero change over the season ({season}) or is not longer than it")
    return np.abs(y - f).mean(axis=1) / scale


def owa(smape_value: float, mase_value: float, smape_naive2: float, mase_naive2: float) -> float:
    return 0.5 * (smape_value / smape_naive2 + mase_value / mase_naive2)


def seasonality_test(x: np.ndarray, season: int) -> bool:
    """The M4 benchmarks' test: |acf(m)| above 1.645 * sqrt((1 + 2 sum_{k<m} acf(k)^2) / n)."""
    if season <= 1 or len(x) < 3 * season:
        return False
    acf = _acf(x, season)
    limit = 1.645 * np.sqrt((1 + 2 * np.sum(acf[1:season] ** 2)) / len(x))
    return bool(abs(acf[season]) > limit)


def _acf(x: np.ndarray, max_lag: int) -> np.ndarray:
    x = x - x.mean()
    denominator = np.sum(x ** 2)
    return np.array([1.0] + [np.sum(x[k:] * x[:-k]) / denominator for k in range(1, max_lag + 1)])


def seasonal_indices(x: np.ndarray, season: int) -> np.ndarray:
    """Classical multiplicative decomposition: the ratio of x to its centred moving average (2 x m for an
    even m), averaged by position in the season and normalised to mean 1. Returns (season,), index 0 being
    the position of x[0]."""
    n = len(x)
    if season % 2 == 0:
        weights = np.r_[0.5, np.ones(season - 1), 0.5] / season
    else:
        weights = np.ones(season) / season
    trend = np.convolve(x, weights, mode="valid")
    start = (len(weights) - 1) // 2
    ratio = np.full(n, np.nan)
    ratio[start:start + len(trend)] = x[start:start + len(trend)] / trend
    idx = np.array([np.nanmean(ratio[p::season]) for p in range(season)])
    return idx / idx.mean()


def naive2(history: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """The M4 Naive2 forecast of one series."""
    if not seasonality_test(history, season):
        return np.repeat(history[-1], horizon)
    si = seasonal_indices(history, season)
    n = len(history)
    positions = np.arange(n + horizon) % season
    adjusted = history / si[positions[:n]]
    return adjusted[-1] * si[positions[n:]]


def seasonal_naive(history: np.ndarray, horizon: int, season: int) -> np.ndarray:
    last = history[-season:]
    return np.tile(last, -(-horizon // season))[:horizon]


def m4_scores(histories: list[np.ndarray], y: np.ndarray, f: np.ndarray, season: int,
              naive2_scores: tuple[float, float] | None = None) -> dict:
    """sMAPE and MASE averaged over series, and OWA against Naive2 (computed here unless given)."""
    s, m = float(smape(y, f).mean()), float(mase(histories, y, f, season).mean())
    if naive2_scores is None:
        n2 = np.stack([naive2(h, y.shape[1], season) for h in histories])
        naive2_scores = (float(smape(y, n2).mean()), float(mase(histories, y, n2, season).mean()))
    return {"smape": s, "mase": m, "owa": owa(s, m, *naive2_scores)}
