"""A ridge classifier in closed form, as ROCKET uses it (one-vs-rest targets of +-1, features standardised,
the penalty chosen by leave-one-out error), plus what a probabilistic classifier needs from it: the
leave-one-out scores of the training rows, and one temperature that turns scores into logits, chosen by the
log-loss of those leave-one-out scores."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ALPHAS = np.logspace(-3, 3, 10)
TEMPERATURES = np.logspace(-1, 2.5, 36)


@dataclass
class RidgeFit:
    mean: np.ndarray        # (p,) feature means
    scale: np.ndarray       # (p,) feature standard deviations (0 -> 1)
    weight: np.ndarray      # (p, k) on standardised features, already multiplied by the temperature
    bias: np.ndarray        # (k,)
    alpha: float
    temperature: float
    loo_logits: np.ndarray  # (n, k) leave-one-out logits of the training rows

    def logits(self, Z: np.ndarray) -> np.ndarray:
        return ((Z - self.mean) / self.scale) @ self.weight + self.bias


def fit_ridge(Z: np.ndarray, codes: np.ndarray, n_classes: int, alphas=ALPHAS) -> RidgeFit:
    """Z: (n, p) features; codes: (n,) ints in [0, n_classes). The leave-one-out residuals of ridge with an
    intercept are (y - fitted) / (1 - 1/n - h_ii) with h the hat matrix of the centred features."""
    Z = np.asarray(Z, dtype=np.float64)
    n = len(Z)
    mean, scale = Z.mean(0), Z.std(0)
    scale = np.where(scale > 0, scale, 1.0)
    Zs = (Z - mean) / scale
    Y = np.full((n, n_classes), -1.0)
    Y[np.arange(n), codes] = 1.0
    y_mean = Y.mean(0)
    Yc = Y - y_mean
    if n <= Zs.shape[1]:          # eigen-decompose the smaller Gram matrix
        S, U = np.linalg.eigh(Zs @ Zs.T)
    else:
        S, V = np.linalg.eigh(Zs.T @ Zs)
        keep = S > 1e-10 * S.max()
        S, V = S[keep], V[:, keep]
        U = Zs @ V / np.sqrt(S)
    S = np.clip(S, 0.0, None)
    UtY = U.T @ Yc
    best = None
    for alpha in alphas:
        shrink = S / (S + alpha)
        fitted = U @ (shrink[:, None] * UtY)
        h = (U ** 2) @ shrink
        resid = (Yc - fitted) / np.clip(1.0 - 1.0 / n - h, 1e-12, None)[:, None]
        err = float((resid ** 2).mean())
        if best is None or err < best[0]:
            best = (err, float(alpha), resid)
    _, alpha, resid = best
    dual = U @ ((1.0 / (S + alpha))[:, None] * UtY)          # (n, k): the weights are Zs^T dual
    weight = Zs.T @ dual
    loo_scores = Y - resid
    temperature = _temperature(loo_scores, codes)
    return RidgeFit(mean, scale, weight * temperature, y_mean * temperature, alpha, temperature,
                    loo_scores * temperature)


def _temperature(scores: np.ndarray, codes: np.ndarray) -> float:
    """The factor t that minimises the mean log-loss of softmax(t * scores)."""
    best_t, best_loss = 1.0, np.inf
    for t in TEMPERATURES:
        z = t * scores
        z = z - z.max(1, keepdims=True)
        loss = float((np.log(np.exp(z).sum(1)) - z[np.arange(len(z)), codes]).mean())
        if loss < best_loss:
            best_t, best_loss = float(t), loss
    return best_t
