"""Classification baselines computed beside the xLSTM: 1-NN under dynamic time warping (full window,
squared point distance; multivariate: dependent DTW, one warping path for all channels) and a ridge
classifier on the raw values."""
from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True)
def _dtw(a, b, best):
    """Squared-Euclidean DTW between a (n, C) and b (m, C) with full window; stops early once every cell of
    a row exceeds `best` (the distance can then only exceed it)."""
    n, m = a.shape[0], b.shape[0]
    prev = np.full(m + 1, np.inf)
    cur = np.full(m + 1, np.inf)
    prev[0] = 0.0
    for i in range(1, n + 1):
        cur[0] = np.inf
        row_min = np.inf
        for j in range(1, m + 1):
            d = 0.0
            for c in range(a.shape[1]):
                diff = a[i - 1, c] - b[j - 1, c]
                d += diff * diff
            v = min(prev[j], prev[j - 1], cur[j - 1]) + d
            cur[j] = v
            if v < row_min:
                row_min = v
        if row_min > best:
            return np.inf
        prev, cur = cur, prev
    return prev[m]


def nn_dtw_predict(train: list, y_train: np.ndarray, test: list) -> np.ndarray:
    """1-NN DTW labels for `test` (lists of (T_i, C) float arrays)."""
    train = [np.ascontiguousarray(x, dtype=np.float64) for x in train]
    out = []
    for q in test:
        q = np.ascontiguousarray(q, dtype=np.float64)
        best, label = np.inf, None
        for x, y in zip(train, y_train):
            d = _dtw(q, x, best)
            if d < best:
                best, label = d, y
        out.append(label)
    return np.array(out)


def ridge_on_raw(train: list, y_train: np.ndarray, test: list) -> np.ndarray:
    """RidgeClassifierCV on the flattened values, standardised per position with training statistics.
    Variable-length sets are padded to the longest sequence by repeating each sequence's last value."""
    from sklearn.linear_model import RidgeClassifierCV

    T = max(len(x) for x in list(train) + list(test))

    def flat(X):
        rows = [np.concatenate([x, np.repeat(x[-1:], T - len(x), axis=0)]) for x in X]
        return np.stack(rows).reshape(len(rows), -1)

    A, B = flat(train), flat(test)
    mu, sd = A.mean(0), A.std(0) + 1e-8
    model = RidgeClassifierCV(alphas=np.logspace(-3, 3, 13)).fit((A - mu) / sd, y_train)
    return model.predict((B - mu) / sd)
