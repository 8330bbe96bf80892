"""The mLSTM block's whole step (paper Figure 6: LayerNorm, up-projection, causal conv + swish, headwise q/k/v,
gates, the cell, per-head norm, learnable skip, swish output gate, down-projection, residual) as one compiled
CPU call: the backend "numba" of the op "mlstm_block_step". The cell update below (eqs 9-11, 46-48) is the
only compiled form of the mLSTM cell. See slstm/block_step.py for the calling convention."""
from __future__ import annotations

import math

import numba
import numpy as np
import torch

from ..numba_layers import (
    MAX_BATCH,  # noqa: F401  (re-exported: tests and callers read it here)
    NJ,
    applies,
    conv_step,
    headnorm,
    headwise,
    layernorm,
    linear,
    logsigmoid,
    new_state,
    register_block_step,
    silu,
    state_arrays,
    view,
)


@numba.njit(**NJ)
def mlstm_block_step(x, ln_w, up_W, conv_w, conv_b, conv_state, q_W, k_W, v_W, ig_W, ig_b, fg_W, fg_b,
                     norm_w, skip, down_W, C, n, m):
    """One step of the mLSTM block (Figure 6) for x (B, d). Returns y, C, n, m, conv_state (all new)."""
    B, d = x.shape
    I = conv_w.shape[0]
    H = ig_W.shape[0]
    D = I // H
    dt = x.dtype
    xn = np.empty((B, d), dt)
    layernorm(x, ln_w, 1e-5, xn)
    u = np.empty((B, 2 * I), dt)
    linear(xn, up_W, u)
    x_inner = np.ascontiguousarray(u[:, :I])
    xc = np.empty((B, I), dt)
    conv_new = np.empty_like(conv_state)
    conv_step(x_inner, conv_state, conv_w, conv_b, xc, conv_new)
    for b in range(B):
        for i in range(I):
            xc[b, i] = silu(xc[b, i])
    qkv = np.empty((B, 3 * I), dt)
    headwise(xc, q_W, qkv[:, :I])
    headwise(xc, k_W, qkv[:, I:2 * I])
    headwise(x_inner, v_W, qkv[:, 2 * I:])
    ig = np.empty((B, H), dt)
    fg = np.empty((B, H), dt)
    linear(qkv, ig_W, ig)  # eq 13
    linear(qkv, fg_W, fg)  # eq 14
    C_new = np.empty_like(C)
    n_new = np.empty_like(n)
    m_new = np.empty_like(m)
    h = np.zeros((B, H, D), dt)
    q3 = qkv[:, :I].copy().reshape(B, H, D)  # contiguous rows per head: the inner loops vectorise
    k3 = qkv[:, I:2 * I].copy().reshape(B, H, D)
    v3 = qkv[:, 2 * I:].copy().reshape(B, H, D)
    scale = dt.type(1.0 / math.sqrt(D))
    for b in range(B):
        for hh in range(H):
            itil = ig[b, hh] + ig_b[hh]
            logf = logsigmoid(fg[b, hh] + fg_b[hh])
            mp = m[b, hh]
            mn = max(logf + mp, itil)  # eq 46
            ii = dt.type(math.exp(itil - mn))  # eq 47 (float32 scalars keep the loops below in float32)
            ff = dt.type(math.exp(logf + mp - mn))  # eq 48
            m_new[b, hh] = mn
            q_, k_, v_, h_ = q3[b, hh], k3[b, hh], v3[b, hh], h[b, hh]
            n_, nn_ = n[b, hh], n_new[b, hh]
            den = 0.0
            for a in range(D):
                na = ff * n_[a] + ii * scale * k_[a]  # eq 10
                nn_[a] = na
                den += q_[a] * na
            for a in range(D):
                ka = k_[a] * scale * ii
                qa = q_[a]
                Ca, Cna = C[b, hh, a], C_new[b, hh, a]
                for c in range(D):
                    val = ff * Ca[c] + ka * v_[c]  # eq 9
                    Cna[c] = val
                    h_[c] += qa * val  # C^T q
            inv = 1.0 / max(abs(den), math.exp(-mn))  # eq 11, stabilised
            for c in range(D):
                h_[c] *= inv
    h = h.reshape(B, I)
    hn = np.empty((B, I), dt)
    headnorm(h, norm_w, H, 1e-5, hn)
    for b in range(B):
        for i in range(I):
            hn[b, i] = (hn[b, i] + skip[i] * xc[b, i]) * silu(u[b, I + i])  # skip, output gate swish(z)
    y = np.empty((B, d), dt)
    linear(hn, down_W, y)
    for b in range(B):
        for i in range(d):
            y[b, i] += x[b, i]
    return y, C_new, n_new, m_new, conv_new


_NAMES = ("C", "n", "m", "conv")


def mlstm_block_step_numba(block, x: torch.Tensor, state, validate: bool = False):
    """state: the block's TensorDict (C, n, m, conv). Returns y (B, d) and the new state (a TensorDict)."""
    w = None if validate else applies(block, x)  # the kernel trusts its caller's shapes: validated calls go to torch
    if w is None:
        return block.torch_step(x, state, validate)
    y, new = fused(block, w, view(x), state)
    return torch.from_numpy(y), new


def fused(block, w, xa, state):
    """The step on numpy: xa (B, d) float32 and the views `applies` returned -> ya and the new state. A caller
    that chains blocks (XLSTMEncoder.step) passes arrays from one to the next without tensors between."""
    y, arrays = kernel(block, w, xa, state_arrays(block, state, _NAMES))
    return y, new_state(block, arrays, _NAMES, xa.shape[0])


def kernel(block, w, xa, arrays):
    """The step on the state's arrays (C, n, m, conv) -> ya and the new arrays."""
    C, n, m, conv = arrays
    y, C, n, m, conv = mlstm_block_step(xa, *w[:4], conv, *w[4:], C, n, m)
    return y, (C, n, m, conv)


register_block_step("mlstm_block_step", mlstm_block_step_numba, fused, kernel, _NAMES)
