"""The sLSTM block's whole step (paper Figure 5: LayerNorm, optional causal conv + swish, headwise gate
projections, the cell, per-head norm, residual, gated feed-forward, residual) as one compiled CPU call: the
backend "numba" of the op "slstm_block_step". A PyTorch step runs a few dozen small ops per block, each
paying dispatcher and allocation overhead; this runs none. The cell math is numba_math.slstm_cell, the same
written form as the fused sequence loop (cpu.py).

A block-step backend is called as fn(block, x, state, validate) -> (y, new_state): `block` hands its weights through
its public `step_weights()` and its PyTorch step through `torch_step(x, state)`, which the backend "torch"
calls and this one falls back to where it does not apply (see `applies`)."""
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
    layernorm,
    linear,
    new_state,
    register_block_step,
    silu,
    state_arrays,
    view,
)
from .numba_math import consts, slstm_cell


@numba.njit(**NJ)
def slstm_block_step(x, ln_w, has_conv, conv_w, conv_b, conv_state, W_if, W_zo, bias, R, exp_forget, norm_w,
                     ffn_ln_w, ffn_up, ffn_down, c, n, m, h, K):
    """One step of the sLSTM block (Figure 5) for x (B, d). Returns y, c, n, m, h, conv_state (all new)."""
    B, d = x.shape
    H = R.shape[1]
    Dh = R.shape[2]
    dt = x.dtype
    xn = np.empty((B, d), dt)
    layernorm(x, ln_w, 1e-5, xn)
    conv_new = np.empty_like(conv_state)
    if has_conv:
        xc = np.empty((B, d), dt)
        conv_step(xn, conv_state, conv_w, conv_b, xc, conv_new)
        for b in range(B):
            for i in range(d):
                xc[b, i] = silu(xc[b, i])
    else:
        xc = xn
    c_new = np.empty_like(c)
    n_new = np.empty_like(n)
    m_new = np.empty_like(m)
    h_new = np.empty_like(h)
    pre = np.empty(4 * Dh, dt)
    for b in range(B):
        for hh in range(H):
            s = hh * Dh
            for g in range(4):
                src = xc if g < 2 else xn
                W = W_if[g] if g < 2 else W_zo[g - 2]
                o = g * Dh
                for e in range(Dh):
                    pre[o + e] = bias[g, hh, e]
                for a in range(Dh):  # row updates over e: contiguous, vectorised
                    xa_ = src[b, s + a]
                    ha = h[b, hh, a]
                    for e in range(Dh):
                        pre[o + e] += xa_ * W[hh, a, e] + ha * R[g, hh, a, e]  # eqs 31-34
            for e in range(Dh):
                _, _, _, _, _, cc, nn_, mn, hv = slstm_cell(pre[e], pre[Dh + e], pre[2 * Dh + e], pre[3 * Dh + e],
                                                            c[b, hh, e], n[b, hh, e], m[b, hh, e], exp_forget, K)
                c_new[b, hh, e] = cc  # eqs 46-50 (numba_math.slstm_cell)
                n_new[b, hh, e] = nn_
                m_new[b, hh, e] = mn
                h_new[b, hh, e] = hv
    hn = np.empty((B, d), dt)
    headnorm(h_new.reshape(B, d), norm_w, H, 1e-5, hn)
    x1 = np.empty((B, d), dt)
    for b in range(B):
        for i in range(d):
            x1[b, i] = x[b, i] + hn[b, i]
    layernorm(x1, ffn_ln_w, 1e-5, xn)
    F = ffn_down.shape[1]
    u = np.empty((B, 2 * F), dt)
    linear(xn, ffn_up, u)
    g_ = np.empty((B, F), dt)
    for b in range(B):
        for i in range(F):
            gv = u[b, i]
            g_[b, i] = 0.5 * gv * (1.0 + math.erf(gv / math.sqrt(2.0))) * u[b, F + i]  # gelu(gate) * up
    y = np.empty((B, d), dt)
    linear(g_, ffn_down, y)
    for b in range(B):
        for i in range(d):
            y[b, i] += x1[b, i]
    return y, c_new, n_new, m_new, h_new, conv_new


_K32 = consts(np.float32)


_NAMES = ("c", "n", "m", "h", "conv")


def slstm_block_step_numba(block, x: torch.Tensor, state, validate: bool = False):
    """state: the block's TensorDict (c, n, m, h and, with a conv, conv). Returns y (B, d) and the new state
    (a TensorDict)."""
    w = None if validate else applies(block, x)  # the kernel trusts its caller's shapes: validated calls go to torch
    if w is None:
        return block.torch_step(x, state, validate)
    y, new = fused(block, w, view(x), state)
    return torch.from_numpy(y), new


def fused(block, w, xa, state):
    """The step on numpy (see mlstm/block_step.py's `fused`)."""
    y, arrays = kernel(block, w, xa, state_arrays(block, state, _NAMES))
    return y, new_state(block, arrays, _NAMES, xa.shape[0])


def kernel(block, w, xa, arrays):
    """The step on the state's arrays (c, n, m, h, conv; conv None without a conv) -> ya and the new arrays."""
    ln_w, conv_w, conv_b, W_if, W_zo, bias, R, norm_w, ffn_ln_w, ffn_up, ffn_down = w
    c, n, m, h, conv = arrays
    has_conv = conv_w is not None
    if not has_conv:
        conv, conv_w, conv_b = _NO_CONV_STATE, _NO_CONV_W, _NO_CONV_B
    y, c, n, m, h, conv_new = slstm_block_step(xa, ln_w, has_conv, conv_w, conv_b, conv, W_if, W_zo, bias, R,
                                               block.exp_forget, norm_w, ffn_ln_w, ffn_up, ffn_down, c, n, m, h, _K32)
    return y, (c, n, m, h, conv_new if has_conv else None)


_NO_CONV_STATE, _NO_CONV_W, _NO_CONV_B = (np.zeros((1, 1, 1), np.float32), np.zeros((1, 1), np.float32),
                                          np.zeros(1, np.float32))


register_block_step("slstm_block_step", slstm_block_step_numba, fused, kernel, _NAMES)
