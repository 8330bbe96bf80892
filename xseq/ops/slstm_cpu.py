"""Fused sLSTM for CPU: the whole time loop (forward and backward through time) in numba-compiled code.

Same math as slstm_ref (eqs 28-34 with the stabiliser of eqs 46-48), one compiled loop instead of a dozen
PyTorch ops per step. Per step and head the recurrent part is one GEMM, h_{t-1}[head] (B x Dh) @
R[:, head] laid out as (Dh x 4Dh); the gate math is fused into one pass over (B, Dh). The backward pass
keeps what it needs from the forward (gates, c, n, h per step), walks back through time, and returns the
gradients of gx, R and the initial state (c, n, m, h). m is detached as in the reference, so the only
gradient into the initial m is the one through f_1 = exp(log f_1 + m_0 - m_1).

Compiled at first use and cached on disk (numba cache=True); if numba cannot compile, the op falls back to
the reference with one warning (see slstm.py)."""
from __future__ import annotations

import math

import numba
import numpy as np
import torch

from ._state import SLSTMState


@numba.njit(cache=True, nogil=True)
def _matmul(a, w, out):
    """out (M, N) = a (M, K) @ w (K, N), as row updates out[i] += a[i, k] * w[k] that the compiler
    vectorises. Plain loops, not BLAS: these products are small, and a threaded BLAS inside a time loop
    next to torch's own threads oversubscribes the cores (measured: 25x slower on 2 busy cores)."""
    M, K = a.shape
    N = w.shape[1]
    for i in range(M):
        for j in range(N):
            out[i, j] = 0.0
        for k in range(K):
            aik = a[i, k]
            for j in range(N):
                out[i, j] += aik * w[k, j]


@numba.njit(cache=True, nogil=True, parallel=True)
def _fwd(gx, Rcat, c, n, m, h, exp_forget, keep, h_out, gates, cs, ns, hs):
    """gx: (B, T, 4, H, Dh); Rcat: (H, Dh, 4*Dh); c, n, m, h: (H, B, Dh), updated in place to the final state.
    h_out: (B, T, H, Dh). With keep: gates (T, 5, H, B, Dh) = i, f, z, o, dlogf/dftil; cs, ns, hs:
    (T + 1, H, B, Dh) the states before each step and after the last. Heads never mix (R is block-diagonal),
    so each thread runs whole time loops of its own heads."""
    B, T, _, H, Dh = gx.shape
    for hh in numba.prange(H):
        r = np.empty((B, 4 * Dh), dtype=c.dtype)
        for t in range(T):
            if keep:
                cs[t, hh] = c[hh]
                ns[t, hh] = n[hh]
                hs[t, hh] = h[hh]
            _matmul(h[hh], Rcat[hh], r)  # (B, 4Dh): R h_{t-1}, eqs 31-34
            for b in range(B):
                for e in range(Dh):
                    itil = gx[b, t, 0, hh, e] + r[b, e]
                    ftil = gx[b, t, 1, hh, e] + r[b, Dh + e]
                    ztil = gx[b, t, 2, hh, e] + r[b, 2 * Dh + e]
                    otil = gx[b, t, 3, hh, e] + r[b, 3 * Dh + e]
                    if exp_forget:
                        logf = ftil
                        fac = 1.0
                    else:  # log sigmoid and its derivative sigmoid(-ftil) from one overflow-free exp
                        ex = math.exp(-abs(ftil))
                        logf = min(ftil, 0.0) - math.log1p(ex)
                        fac = ex / (1.0 + ex) if ftil >= 0 else 1.0 / (1.0 + ex)
                    a_ = logf + m[hh, b, e]
                    if a_ >= itil:  # eqs 46-48: the larger of the two exponents is the new stabiliser,
                        m_new = a_  # so one of the two gates is exactly 1
                        fg = 1.0
                        ig = math.exp(itil - a_)
                    else:
                        m_new = itil
                        ig = 1.0
                        fg = math.exp(a_ - itil)
                    zg = math.tanh(ztil)
                    og = 1.0 / (1.0 + math.exp(-otil))
                    c_new = fg * c[hh, b, e] + ig * zg  # eq 49
                    n_new = fg * n[hh, b, e] + ig  # eq 50
                    h_new = og * (c_new / n_new)
                    c[hh, b, e] = c_new
                    n[hh, b, e] = n_new
                    m[hh, b, e] = m_new
                    h[hh, b, e] = h_new  # read again only by this head's next step
                    h_out[b, t, hh, e] = h_new
                    if keep:
                        gates[t, 0, hh, b, e] = ig
                        gates[t, 1, hh, b, e] = fg
                        gates[t, 2, hh, b, e] = zg
                        gates[t, 3, hh, b, e] = og
                        gates[t, 4, hh, b, e] = fac
        if keep:
            cs[T, hh] = c[hh]
            ns[T, hh] = n[hh]
            hs[T, hh] = h[hh]


@numba.njit(cache=True, nogil=True, parallel=True)
def _bwd(dh_out, dc, dn, dh, RcatT, gates, cs, ns, dpre, dlogf0):
    """Backward through time. dh_out: (B, T, H, Dh); dc, dn, dh: (H, B, Dh) gradients of the final state,
    updated in place to those of the initial state; RcatT: (H, 4*Dh, Dh). Writes dpre (T, H, B, 4*Dh), the
    gradients of the pre-activations, and dlogf0 (H, B, Dh), the gradient of log f at the first step."""
    B, T, H, Dh = dh_out.shape
    for hh in numba.prange(H):
        for t in range(T - 1, -1, -1):
            for b in range(B):
                for e in range(Dh):
                    ig = gates[t, 0, hh, b, e]
                    fg = gates[t, 1, hh, b, e]
                    zg = gates[t, 2, hh, b, e]
                    og = gates[t, 3, hh, b, e]
                    c_new = cs[t + 1, hh, b, e]
                    n_new = ns[t + 1, hh, b, e]
                    g = dh_out[b, t, hh, e] + dh[hh, b, e]
                    d_o = g * c_new / n_new
                    dct = dc[hh, b, e] + g * og / n_new
                    dnt = dn[hh, b, e] - g * og * c_new / (n_new * n_new)
                    di = dct * zg + dnt
                    dz = dct * ig
                    df = dct * cs[t, hh, b, e] + dnt * ns[t, hh, b, e]
                    dlogf = df * fg
                    dpre[t, hh, b, e] = di * ig
                    dpre[t, hh, b, Dh + e] = dlogf * gates[t, 4, hh, b, e]
                    dpre[t, hh, b, 2 * Dh + e] = dz * (1.0 - zg * zg)
                    dpre[t, hh, b, 3 * Dh + e] = d_o * og * (1.0 - og)
                    dc[hh, b, e] = dct * fg
                    dn[hh, b, e] = dnt * fg
                    if t == 0:
                        dlogf0[hh, b, e] = dlogf
            _matmul(dpre[t, hh], RcatT[hh], dh[hh])  # through R h_{t-1}


def _threads() -> None:
    """numba's parallel loops use as many threads as torch is allowed to (at most numba's pool size)."""
    numba.set_num_threads(max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS)))


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().contiguous().numpy()


def _state_hbd(s: torch.Tensor) -> np.ndarray:
    """(B, H, Dh) -> a fresh contiguous (H, B, Dh) array (the kernels update it in place)."""
    return np.array(s.detach().permute(1, 0, 2).numpy(), order="C", copy=True)  # never a view of the input


def _rcat(R: torch.Tensor) -> np.ndarray:
    """(4, H, Dh, Dh) -> (H, Dh, 4*Dh): row d of head hh holds R[g, hh, d, :] for g = i, f, z, o."""
    return np.ascontiguousarray(R.detach().permute(1, 2, 0, 3).reshape(R.shape[1], R.shape[2], -1).numpy())


class _FusedSLSTM(torch.autograd.Function):
    @staticmethod
    def forward(ctx, gx, R, c0, n0, m0, h0, exp_forget: bool):
        B, T, _, H, Dh = gx.shape
        keep = any(ctx.needs_input_grad[:6])
        c, n, m, h = (_state_hbd(s) for s in (c0, n0, m0, h0))
        dt = c.dtype
        Rcat = _rcat(R)
        h_out = np.empty((B, T, H, Dh), dt)
        shape = (T, 5, H, B, Dh) if keep else (1, 5, 1, 1, 1)
        gates = np.empty(shape, dt)
        st = (T + 1, H, B, Dh) if keep else (1, 1, 1, 1)
        cs, ns, hs = np.empty(st, dt), np.empty(st, dt), np.empty(st, dt)
        _threads()
        _fwd(_np(gx), Rcat, c, n, m, h, exp_forget, keep, h_out, gates, cs, ns, hs)
        if keep:
            ctx.save_for_backward(R)
            ctx.saved = (gates, cs, ns, hs)
        ctx.mark_non_differentiable(m_t := torch.from_numpy(m).permute(1, 0, 2))
        return (torch.from_numpy(h_out), torch.from_numpy(c).permute(1, 0, 2), torch.from_numpy(n).permute(1, 0, 2),
                m_t, torch.from_numpy(h).permute(1, 0, 2))

    @staticmethod
    def backward(ctx, dh_out, dc_T, dn_T, _dm_T, dh_T):
        (R,) = ctx.saved_tensors
        gates, cs, ns, hs = ctx.saved
        T, _, H, B, Dh = gates.shape
        dt = gates.dtype

        def grad_state(g):
            return np.zeros((H, B, Dh), dt) if g is None else _state_hbd(g)

        dc, dn, dh = grad_state(dc_T), grad_state(dn_T), grad_state(dh_T)
        dh_out = np.zeros((B, T, H, Dh), dt) if dh_out is None else _np(dh_out)
        RcatT = np.ascontiguousarray(_rcat(R).transpose(0, 2, 1))
        dpre = np.empty((T, H, B, 4 * Dh), dt)
        dlogf0 = np.zeros((H, B, Dh), dt)
        _threads()
        _bwd(dh_out, dc, dn, dh, RcatT, gates, cs, ns, dpre, dlogf0)
        dpre_t = torch.from_numpy(dpre).view(T, H, B, 4, Dh)
        dgx = dpre_t.permute(2, 0, 3, 1, 4)  # (B, T, 4, H, Dh)
        h_prev = torch.from_numpy(hs[:T])  # (T, H, B, Dh)
        dR = torch.einsum("thbd,thbge->ghde", h_prev, dpre_t)  # sum over time and batch of h_{t-1}^T dpre_t

        def back(a):
            return torch.from_numpy(a).permute(1, 0, 2)

        return dgx, dR, back(dc), back(dn), back(dlogf0), back(dh), None


def slstm_fused(gx: torch.Tensor, R: torch.Tensor, state: SLSTMState, forget: str):
    """gx: (B, T, 4, H, Dh), R: (4, H, Dh, Dh), state (c, n, m, h) each (B, H, Dh), all float32 or float64 on
    CPU. Returns h (B, T, H, Dh) and the final SLSTMState, differentiable in gx, R, c, n, m, h."""
    h, c, n, m, h_last = _FusedSLSTM.apply(gx, R, *state, forget == "exp")
    return h, SLSTMState(c, n, m, h_last)
