"""Baselines printed beside every forecasting figure: seasonal naive, and the closed-form centred linear map
(a ridge regression from the last L values, minus their mean, to the next H values, shared by all series)."""
from __future__ import annotations

import numpy as np


def windows(values: np.ndarray, origins: np.ndarray, lookback: int, horizon: int):
    """values: (n_series, T). Returns past (n_series * n_origins, L) and future (..., H), series-major."""
    past_idx = origins[:, None] + np.arange(-lookback, 0)
    fut_idx = origins[:, None] + np.arange(horizon)
    past = values[:, past_idx].reshape(-1, lookback)
    future = values[:, fut_idx].reshape(-1, horizon)
    return past, future


def seasonal_naive(past: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """Repeat the last `season` values of each window."""
    reps = -(-horizon // season)
    return np.tile(past[:, -season:], reps)[:, :horizon]


class NormalEquations:
    """X^T X and X^T Y of mean-centred windows, accumulated chunk by chunk in float64 (memory O(L^2)), so that
    ridge solutions for several penalties cost one L x L solve each."""

    def __init__(self, lookback: int, horizon: int, extra: int = 0):
        self.A = np.zeros((lookback + extra, lookback + extra))
        self.B = np.zeros((lookback + extra, horizon))
        self.n = 0

    def add(self, past: np.ndarray, future: np.ndarray, extra: np.ndarray | None = None) -> None:
        """extra: (N, E) more features after the centred past (already centred by the caller)."""
        mu = past.mean(axis=1, keepdims=True)
        X = (past - mu).astype(np.float64)
        if extra is not None:
            X = np.concatenate([X, extra.astype(np.float64)], axis=1)
        self.A += X.T @ X
        self.B += X.T @ (future - mu).astype(np.float64)
        self.n += len(past)

    def solve(self, ridge: float) -> np.ndarray:
        """W (L, H) minimising |Y - X W|^2 + ridge * n * |W|^2 (no intercept: the window mean is removed)."""
        return np.linalg.solve(self.A + ridge * self.n * np.eye(len(self.A)), self.B)


def fit_centred_linear(values: np.ndarray, origins: np.ndarray, lookback: int, horizon: int,
                       ridge: float = 1e-3, chunk: int = 4096) -> np.ndarray:
    """The closed-form baseline on series `values` (n_series, T): least squares from mean-centred past
    windows to the futures centred by the same mean, no intercept, ridge `ridge` per window."""
    eq = NormalEquations(lookback, horizon)
    for s in range(0, len(origins), chunk):
        eq.add(*windows(values, origins[s:s + chunk], lookback, horizon))
    return eq.solve(ridge)


def predict_centred_linear(past: np.ndarray, W: np.ndarray) -> np.ndarray:
    mu = past.mean(axis=1, keepdims=True)
    return (past - mu) @ W + mu
