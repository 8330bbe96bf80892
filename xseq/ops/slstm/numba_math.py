"""Scalar gate math of the fused CPU sLSTM (numba, inlined into its time loop).

Everything stays in the kernel's dtype: float32 kernels call expf/logf, never their float64 versions,
and avoid the two slow libm calls (tanh and log1p cost 5-7 exp's each here, measured) and the
slow path of exp for results that would be denormal. Constants come in a small array of the kernel's
dtype (`consts(dtype)`), since a Python float literal would promote float32 arithmetic to float64.
"""
from __future__ import annotations

import math

import numba
import numpy as np

_INLINE = dict(inline="always", nogil=True, cache=True)

# K[0] = 0, K[1] = 1, K[2] = 2, K[3] = lowest exp argument that gives a normal number,
# K[4] = |z| below which tanh uses its Taylor series (error under the dtype's rounding), K[5:8] = that
# series' coefficients 1/3, 2/15, 17/315.
_SERIES = (1 / 3, 2 / 15, 17 / 315)
_CONSTS = {np.dtype(np.float32): (0.0, 1.0, 2.0, -87.0, 0.125, *_SERIES),
           np.dtype(np.float64): (0.0, 1.0, 2.0, -708.0, 0.01, *_SERIES)}


def consts(dtype) -> np.ndarray:
    return np.array(_CONSTS[np.dtype(dtype)], dtype=dtype)


@numba.njit(**_INLINE)
def exp_normal(x, K):
    """exp(x), flushing results below the smallest normal number to that number's order (exp(K[3]));
    -inf gives exp(K[3]) too, which is what a gate of exactly 0 becomes (relative weight < 1e-37)."""
    return math.exp(max(x, K[3]))


@numba.njit(**_INLINE)
def tanh(z, K):
    az = abs(z)
    if az < K[4]:  # z - z^3/3 + 2 z^5/15 - 17 z^7/315
        z2 = z * z
        return z * (K[1] - z2 * (K[5] - z2 * (K[6] - z2 * K[7])))
    e = math.exp(-K[2] * az)
    return math.copysign((K[1] - e) / (K[1] + e), z)


@numba.njit(**_INLINE)
def sigmoid(x, K):
    return K[1] / (K[1] + math.exp(-x))


@numba.njit(**_INLINE)
def logsigmoid(f, K):
    """(log sigmoid(f), its derivative sigmoid(-f)) from one overflow-free exp; log1p(e) as
    log(u) * e / (u - 1) with u = 1 + e, exact to rounding for e in (0, 1]."""
    ex = math.exp(-abs(f))
    u = K[1] + ex
    lp = math.log(u) * (ex / (u - K[1])) if u != K[1] else ex
    return min(f, K[0]) - lp, (ex if f >= K[0] else K[1]) / u


@numba.njit(**_INLINE)
def slstm_cell(itil, ftil, ztil, otil, c, n, m, exp_forget, K):
    """One sLSTM unit: pre-activations and previous (c, n, m) -> (i, f, z, o, dlogf/dftil, c, n, m, h)
    after the stabilised update, eqs 46-50. The larger of the two exponents becomes the new stabiliser,
    so one of the two gates is exactly 1."""
    if exp_forget:
        logf, fac = ftil, K[1]
    else:
        logf, fac = logsigmoid(ftil, K)
    a = logf + m
    if a >= itil:  # eq 46
        m_new, fg, ig = a, K[1], exp_normal(itil - a, K)  # eq 47
    else:
        m_new, ig, fg = itil, K[1], exp_normal(a - itil, K)  # eq 48
    zg = tanh(ztil, K)
    og = sigmoid(otil, K)
    c_new = fg * c + ig * zg  # eq 49
    n_new = fg * n + ig  # eq 50
    return ig, fg, zg, og, fac, c_new, n_new, m_new, og * (c_new / n_new)
