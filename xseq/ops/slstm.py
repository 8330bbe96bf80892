"""Public sLSTM op: validation, dtype handling and dispatch to a backend."""
from __future__ import annotations

import warnings

import torch

from . import slstm_ref
from ._checks import check_device, check_finite, check_same_device, check_shape, compute_dtype
from ._dispatch import register_backend, resolve
from ._state import SLSTMState
from .slstm_ref import FORGET


def slstm(gx, R, state=None, *, forget: str = "sigmoid", grad_clip: float | None = None, backend: str = "auto"):
    """sLSTM over a sequence (eqs 28-34), stabilised (eqs 46-48).

    gx: (B, T, 4, H, Dh) input parts of the pre-activations (W x + b), gate order (i, f, z, o);
    R: (4, H, Dh, Dh) block-diagonal recurrent weights, pre[g, head] = gx[g, head] + h_{t-1}[head] @ R[g, head].
    i = exp, f = sigmoid (or exp with forget="exp"), z = tanh, o = sigmoid.
    state: None or (c, n, m, h), each (B, H, Dh). grad_clip: clamp the gradient that reaches h_{t-1} through R
    to [-grad_clip, grad_clip] in the backward pass (the paper uses 10; None: no clipping).
    Returns h (B, T, H, Dh) in gx's dtype and the final SLSTMState in float32 (float64 for float64 inputs)."""
    check_shape("gx", gx, (None, None, 4, None, None), "(B, T, 4, H, Dh)")
    B, T, _, H, Dh = gx.shape
    if T == 0:
        raise ValueError("gx must have at least one time step (T >= 1); got T = 0")
    fn = resolve("slstm", backend, gx.device)
    _check_common(gx, R, H, Dh, forget, check_gx=fn is not _slstm_numba)  # the fused loop checks gx as it reads it
    state = check_state(state, B, H, Dh, gx.device)
    if grad_clip is not None and (isinstance(grad_clip, bool) or not isinstance(grad_clip, (int, float))
                                  or not grad_clip > 0):
        raise ValueError(f"grad_clip must be None or a positive number; got {grad_clip!r}")
    return fn(gx, R, state, forget=forget, grad_clip=None if grad_clip is None else float(grad_clip))


def slstm_step(gx, R, state=None, *, forget: str = "sigmoid", backend: str = "auto", validate: bool = True):
    """One sLSTM step. gx: (B, 4, H, Dh); R: (4, H, Dh, Dh). Returns h (B, H, Dh) and the new SLSTMState.
    validate=False skips the checks (see mlstm_step)."""
    if not validate:
        return resolve("slstm_step", backend, gx.device)(gx, R, None if state is None else SLSTMState(*state),
                                                         forget=forget)
    check_shape("gx", gx, (None, 4, None, None), "(B, 4, H, Dh)")
    B, _, H, Dh = gx.shape
    _check_common(gx, R, H, Dh, forget)
    state = check_state(state, B, H, Dh, gx.device)
    return resolve("slstm_step", backend, gx.device)(gx, R, state, forget=forget)


def _check_common(gx, R, H, Dh, forget, check_gx: bool = True):
    check_shape("R", R, (4, H, Dh, Dh), "(4, H, Dh, Dh) matching gx's heads and head size")
    if forget not in FORGET:
        raise ValueError(f"forget must be one of {FORGET}; got {forget!r}")
    check_same_device(gx=gx, R=R)
    if check_gx:
        check_finite("gx", gx)
    check_finite("R", R)


def check_state(state, B: int, H: int, Dh: int, device) -> SLSTMState | None:
    if state is None:
        return None
    if not isinstance(state, (tuple, list)) or len(state) != 4:
        raise ValueError(f"state must be None or a tuple (c, n, m, h); got {type(state).__name__}")
    for name, s in zip(SLSTMState._fields, state):
        check_shape(f"state.{name}", s, (B, H, Dh), "(B, H, Dh)")
        check_device(f"state.{name}", s, device)
        check_finite(f"state.{name}", s, allow_neg_inf=(name == "m"))
    return SLSTMState(*state)


def _prepare(gx, R, state):
    cd = compute_dtype(gx, R)
    gx, R = gx.to(cd), R.to(cd)
    state = slstm_ref.zero_state(gx) if state is None else SLSTMState(*(s.to(cd) for s in state))
    return gx, R, state


def _slstm_torch(gx, R, state, *, forget, grad_clip=None):
    out_dtype = gx.dtype
    gx, R, state = _prepare(gx, R, state)
    h, state = slstm_ref.slstm_recurrent(gx, R, state, forget, grad_clip)
    return h.to(out_dtype), state


def _slstm_step_torch(gx, R, state, *, forget):
    out_dtype = gx.dtype
    gx, R, state = _prepare(gx, R, state)
    h, state = slstm_ref.slstm_step(gx, R, state, forget)
    return h.to(out_dtype), state


_FUSED_BROKEN: str | None = None


def _slstm_numba(gx, R, state, *, forget, grad_clip=None):
    """The fused CPU loop (slstm_cpu.py); the reference if numba cannot compile here (one warning)."""
    global _FUSED_BROKEN
    if _FUSED_BROKEN is None:
        try:
            from .slstm_cpu import slstm_fused
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


# above the reference: the kernels passed their gpu tests on an H200 (both layouts, 2026-11-30) and run the
# B=16, T=2048 benchmark 49-76x faster than the reference forward (benchmarks/kernels_gpu.py)
CUDA_PRIORITY = 20


def _slstm_cuda(gx, R, state, *, forget, grad_clip=None):
    """The fused CUDA kernels (slstm_cuda.py): bfloat16 when gx is bfloat16 (R then runs in bfloat16 too),
    else float32; float64, head sizes over 256 and a failed build (one warning) run the reference."""
    from ._cuda_ext import usable
    from .slstm_cuda import MAX_HEAD_SIZE, slstm_fused_cuda

    if compute_dtype(gx, R) != torch.float32 or gx.shape[-1] > MAX_HEAD_SIZE or not usable("slstm", "sLSTM"):
        return _slstm_torch(gx, R, state, forget=forget, grad_clip=grad_clip)
    dt = torch.bfloat16 if gx.dtype == torch.bfloat16 else torch.float32
    if state is None:
        z = gx.new_zeros(gx.shape[0], gx.shape[-2], gx.shape[-1], dtype=torch.float32)
        state = SLSTMState(z, z.clone(), torch.full_like(z, float("-inf")), z.clone())
    else:
        state = SLSTMState(*(s.float() for s in state))
    h, state = slstm_fused_cuda(gx.to(dt), R.to(dt), state, forget, grad_clip)
    return h.to(gx.dtype), state


def _numba_error():
    try:
        from numba.core.errors import NumbaError
        return NumbaError
    except ImportError:  # pragma: no cover
        return ImportError


register_backend("slstm", "torch", _slstm_torch)
register_backend("slstm", "numba", _slstm_numba, available=lambda device: device.type == "cpu", priority=10)
register_backend("slstm", "cuda", _slstm_cuda, available=lambda device: device.type == "cuda",
                 priority=CUDA_PRIORITY)
register_backend("slstm_step", "torch", _slstm_step_torch)
