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

import warnings

import numba
import numpy as np
import torch

from ..checks import check_finite
from ..registry import keep_for_backward, register_backend
from ..state import SLSTMState
from .numba_math import consts, slstm_cell
from .torch_backend import _prepare, _slstm_torch


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
def _fwd(gx, Rcat, c, n, m, h, exp_forget, keep, K, h_out, gates, cs, ns, hprev, bad):
    """gx: (B, T, 4, H, Dh), any strides (read in place); Rcat: (H, Dh, 4*Dh); c, n, m, h: (H, B, Dh), updated
    in place to the final state; K: numba_math.consts. h_out: (B, T, H, Dh). With keep, head-major (each
    thread writes its own contiguous slabs): gates (H, T, 5, B, Dh) = i, f, z, o, dlogf/dftil; cs, ns
    (H, T + 1, B, Dh) the cell states before each step and after the last; hprev (H, B, T, Dh) the h before
    each step. bad (H,) counts the non-finite entries of gx per head (checked here, where gx is read anyway,
    instead of a separate pass over it). Heads never mix (R is block-diagonal), so each thread runs whole
    time loops of its own heads."""
    B, T, _, H, Dh = gx.shape
    for hh in numba.prange(H):
        r = np.empty((B, 4 * Dh), dtype=c.dtype)
        nonfinite = 0
        ch, nh, mh, hh_, Rh = c[hh], n[hh], m[hh], h[hh], Rcat[hh]  # this head's slabs, sliced once
        for t in range(T):
            if keep:
                cs[hh, t] = ch
                ns[hh, t] = nh
                hprev[hh, :, t] = hh_
            _matmul(hh_, Rh, r)  # (B, 4Dh): R h_{t-1}, eqs 31-34
            for b in range(B):
                for e in range(Dh):
                    x_i, x_f, x_z, x_o = gx[b, t, 0, hh, e], gx[b, t, 1, hh, e], gx[b, t, 2, hh, e], gx[b, t, 3, hh, e]
                    if not np.isfinite(x_i + x_f + x_z + x_o):  # a sum of finite gates can overflow: count exactly
                        nonfinite += (not np.isfinite(x_i)) + (not np.isfinite(x_f)) + (not np.isfinite(x_z)) + \
                            (not np.isfinite(x_o))
                    ig, fg, zg, og, fac, c_new, n_new, m_new, h_new = slstm_cell(
                        x_i + r[b, e], x_f + r[b, Dh + e], x_z + r[b, 2 * Dh + e], x_o + r[b, 3 * Dh + e],
                        ch[b, e], nh[b, e], mh[b, e], exp_forget, K)
                    ch[b, e] = c_new
                    nh[b, e] = n_new
                    mh[b, e] = m_new
                    hh_[b, e] = h_new  # read again only by this head's next step
                    h_out[b, t, hh, e] = h_new
                    if keep:
                        gates[hh, t, 0, b, e] = ig
                        gates[hh, t, 1, b, e] = fg
                        gates[hh, t, 2, b, e] = zg
                        gates[hh, t, 3, b, e] = og
                        gates[hh, t, 4, b, e] = fac
        bad[hh] = nonfinite
        if keep:
            cs[hh, T] = ch
            ns[hh, T] = nh


@numba.njit(cache=True, nogil=True, parallel=True)
def _bwd(dh_out, dc, dn, dh, RcatT, gates, cs, ns, K, dpre, dlogf0, clip):
    """Backward through time. dh_out: (B, T, H, Dh), any strides; dc, dn, dh: (H, B, Dh) gradients of the
    final state, updated in place to those of the initial state; RcatT: (H, 4*Dh, Dh). Writes dpre
    (H, B, T, 4*Dh), the gradients of the pre-activations, and dlogf0 (H, B, Dh), that of log f at t = 0.
    clip: the gradient reaching h_{t-1} through R is clamped to [-clip, clip] (inf: no clipping)."""
    B, T, H, Dh = dh_out.shape
    one = K[1]
    for hh in numba.prange(H):
        for t in range(T - 1, -1, -1):
            for b in range(B):
                for e in range(Dh):
                    ig = gates[hh, t, 0, b, e]
                    fg = gates[hh, t, 1, b, e]
                    zg = gates[hh, t, 2, b, e]
                    og = gates[hh, t, 3, b, e]
                    c_new = cs[hh, t + 1, b, e]
                    n_new = ns[hh, t + 1, b, e]
                    g = dh_out[b, t, hh, e] + dh[hh, b, e]
                    d_o = g * c_new / n_new
                    dct = dc[hh, b, e] + g * og / n_new
                    dnt = dn[hh, b, e] - g * og * c_new / (n_new * n_new)
                    di = dct * zg + dnt
                    dz = dct * ig
                    dlogf = (dct * cs[hh, t, b, e] + dnt * ns[hh, t, b, e]) * fg
                    dpre[hh, b, t, e] = di * ig
                    dpre[hh, b, t, Dh + e] = dlogf * gates[hh, t, 4, b, e]
                    dpre[hh, b, t, 2 * Dh + e] = dz * (one - zg * zg)
                    dpre[hh, b, t, 3 * Dh + e] = d_o * og * (one - og)
                    dc[hh, b, e] = dct * fg
                    dn[hh, b, e] = dnt * fg
                    if t == 0:
                        dlogf0[hh, b, e] = dlogf
            _matmul(dpre[hh, :, t], RcatT[hh], dh[hh])  # through R h_{t-1}
            if clip < np.inf:  # App. B.4: the recurrent gradient's magnitude is clipped
                for b in range(B):
                    for e in range(Dh):
                        dh[hh, b, e] = min(max(dh[hh, b, e], -clip), clip)


def _run(kernel, *args) -> None:
    """kernel(*args) with as many numba threads as torch is allowed (at most numba's pool size). numba's
    OpenMP layer shares the OpenMP runtime with torch and leaves the caller's thread count at the pool size
    after a parallel region, so torch's own count is put back afterwards (measured: 1 became 2)."""
    n = torch.get_num_threads()
    numba.set_num_threads(max(1, min(n, numba.config.NUMBA_NUM_THREADS)))
    try:
        kernel(*args)
    finally:
        if torch.get_num_threads() != n:
            torch.set_num_threads(n)


def _np(t: torch.Tensor) -> np.ndarray:
    """A numpy view of t as it is laid out (the kernels read any strides; no copy)."""
    return t.detach().numpy()


def _state_hbd(s: torch.Tensor) -> np.ndarray:
    """(B, H, Dh) -> a fresh contiguous (H, B, Dh) array (the kernels update it in place)."""
    return np.array(s.detach().permute(1, 0, 2).numpy(), order="C", copy=True)  # never a view of the input


def _rcat(R: torch.Tensor) -> np.ndarray:
    """(4, H, Dh, Dh) -> (H, Dh, 4*Dh): row d of head hh holds R[g, hh, d, :] for g = i, f, z, o."""
    return np.ascontiguousarray(R.detach().permute(1, 2, 0, 3).reshape(R.shape[1], R.shape[2], -1).numpy())


def _bhd(a: np.ndarray) -> torch.Tensor:
    """(H, B, Dh) array -> (B, H, Dh) tensor view."""
    return torch.from_numpy(a).permute(1, 0, 2)


class _FusedSLSTM(torch.autograd.Function):
    @staticmethod
    def forward(ctx, gx, R, c0, n0, m0, h0, exp_forget: bool, grad_clip, keep: bool):
        B, T, _, H, Dh = gx.shape
        ctx.clip = np.inf if grad_clip is None else float(grad_clip)
        c, n, m, h = (_state_hbd(s) for s in (c0, n0, m0, h0))
        dt = c.dtype
        h_out = np.empty((B, T, H, Dh), dt)
        if keep:
            gates, hprev = np.empty((H, T, 5, B, Dh), dt), np.empty((H, B, T, Dh), dt)
            cs, ns = np.empty((H, T + 1, B, Dh), dt), np.empty((H, T + 1, B, Dh), dt)
        else:
            gates, hprev, cs, ns = np.empty((1, 1, 5, 1, 1), dt), *(np.empty((1, 1, 1, 1), dt) for _ in range(3))
        K = consts(dt)
        bad = np.zeros(H, np.int64)
        _run(_fwd, _np(gx), _rcat(R), c, n, m, h, exp_forget, keep, K, h_out, gates, cs, ns, hprev, bad)
        if bad.sum():
            raise ValueError(f"gx contains {int(bad.sum())} NaN or inf value(s)")
        if keep:
            ctx.save_for_backward(R)
            ctx.saved = (gates, cs, ns, hprev, K)
        ctx.mark_non_differentiable(m_t := _bhd(m))
        return torch.from_numpy(h_out), _bhd(c), _bhd(n), m_t, _bhd(h)

    @staticmethod
    def backward(ctx, dh_out, dc_T, dn_T, _dm_T, dh_T):
        (R,) = ctx.saved_tensors
        gates, cs, ns, hprev, K = ctx.saved
        H, T, _, B, Dh = gates.shape
        dt = gates.dtype

        def grad_state(g):
            return np.zeros((H, B, Dh), dt) if g is None else _state_hbd(g)

        dc, dn, dh = grad_state(dc_T), grad_state(dn_T), grad_state(dh_T)
        dh_out = np.zeros((B, T, H, Dh), dt) if dh_out is None else _np(dh_out)
        RcatT = np.ascontiguousarray(_rcat(R).transpose(0, 2, 1))
        dpre = np.empty((H, B, T, 4 * Dh), dt)
        dlogf0 = np.zeros((H, B, Dh), dt)
        _run(_bwd, dh_out, dc, dn, dh, RcatT, gates, cs, ns, K, dpre, dlogf0, dt.type(ctx.clip))
        dpre_t = torch.from_numpy(dpre)
        dgx = dpre_t.view(H, B, T, 4, Dh).permute(1, 2, 3, 0, 4)  # (B, T, 4, H, Dh), a view
        # dR[g, hh] = sum over batch and time of h_{t-1}[hh]^T dpre_t[g, hh]: one product per head
        dR = torch.bmm(torch.from_numpy(hprev).view(H, B * T, Dh).transpose(1, 2), dpre_t.view(H, B * T, 4 * Dh))
        dR = dR.view(H, Dh, 4, Dh).permute(2, 0, 1, 3)
        return dgx, dR, _bhd(dc), _bhd(dn), _bhd(dlogf0), _bhd(dh), None, None, None


def slstm_fused(gx: torch.Tensor, R: torch.Tensor, state: SLSTMState, forget: str, grad_clip: float | None = None):
    """gx: (B, T, 4, H, Dh), R: (4, H, Dh, Dh), state (c, n, m, h) each (B, H, Dh), all float32 or float64 on
    CPU. Returns h (B, T, H, Dh) and the final SLSTMState, differentiable in gx, R, c, n, m, h; grad_clip
    clamps the gradient reaching h_{t-1} through R (see slstm_ref._ClipRecurrentGrad)."""
    keep = keep_for_backward(gx, R, *state)
    h, c, n, m, h_last = _FusedSLSTM.apply(gx, R, *state, forget == "exp", grad_clip, keep)
    return h, SLSTMState(c, n, m, h_last)


_FUSED_BROKEN: str | None = None


def _slstm_numba(gx, R, state, *, forget, grad_clip=None):
    """The fused CPU loop (this module); the reference if numba cannot compile here (one warning)."""
    global _FUSED_BROKEN
    if _FUSED_BROKEN is None:
        try:
            out_dtype = gx.dtype
            gx, R, state = _prepare(gx, R, state)
            h, state = slstm_fused(gx, R, state, forget, grad_clip)
            return h.to(out_dtype), state
        except (ImportError, OSError, _numba_error()) as e:
            _FUSED_BROKEN = f"{type(e).__name__}: {e}"
            warnings.warn(f"xseq: the fused CPU sLSTM could not be compiled ({_FUSED_BROKEN}); using the PyTorch "
                          f"reference instead", RuntimeWarning, stacklevel=3)
    check_finite("gx", gx)  # slstm() left this check to the fused loop
    return _slstm_torch(gx, R, state, forget=forget, grad_clip=grad_clip)


def _numba_error():
    try:
        from numba.core.errors import NumbaError
        return NumbaError
    except ImportError:  # pragma: no cover
        return ImportError


_slstm_numba.checks_gx = True  # the fused loop counts non-finite entries of gx as it reads them
register_backend("slstm", "numba", _slstm_numba, available=lambda device: device.type == "cpu", priority=10)
