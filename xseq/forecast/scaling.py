"""Per-series scaling, fitted on each series' training part: the network works on (y - shift) / scale.

  standard   shift = mean, scale = std (population)
  mase       shift = 0, scale = the in-sample seasonal naive MAE, mean |y_t - y_{t-season}| (the MASE scale)
  last       shift = 0, scale = |last training value|

A standard scale that comes out 0 (a constant series) is 1. A mase or last scale that comes out 0 (a constant
series, a last value of 0) falls back to the mean absolute value, then to 1. The seasonal naive MAE is also kept
for the mase loss (with the same fallbacks)."""
from __future__ import annotations

import numpy as np

SCALINGS = ("standard", "mase", "last")


def naive_mae(values: np.ndarray, season: int) -> float:
    """mean |y_t - y_{t-season}| over the series; NaN where it is shorter than season + 1."""
    if len(values) <= season:
        return float("nan")
    return float(np.abs(values[season:] - values[:-season]).mean())


def _usable(x: float, values: np.ndarray) -> float:
    if np.isfinite(x) and x > 0:
        return x
    level = float(np.abs(values).mean()) if len(values) else 0.0
    return level if level > 0 else 1.0


def _mean_std(v: np.ndarray) -> tuple[float, float]:
    """Mean and population std, computed on v / max|v| so that the squares of values beyond 1e154 do not
    overflow to inf."""
    top = float(np.abs(v).max()) if len(v) else 0.0
    if top < 1e150:  # the plain formulas (bit for bit what they always were)
        return float(v.mean()), float(v.std())
    u = v / top
    return float(u.mean()) * top, float(u.std()) * top


def fit_scaling(parts: list[np.ndarray], how: str, season: int):
    """parts: each series' training values. Returns shift (S,), scale (S,), mase_scale (S,)."""
    shift, scale, mase = [], [], []
    for v in parts:
        m = _usable(naive_mae(v, season), v)
        mase.append(m)
        if how == "standard":
            mean, sd = _mean_std(v)
            shift.append(mean)
            scale.append(sd if sd > 0 else 1.0)
        elif how == "mase":
            shift.append(0.0)
            scale.append(m)
        elif how == "last":
            shift.append(0.0)
            scale.append(_usable(abs(float(v[-1])), v))
        else:
            raise ValueError(f"scaling must be one of {SCALINGS}; got {how!r}")
    return np.array(shift), np.array(scale), np.array(mase)
