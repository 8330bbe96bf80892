"""The public sLSTM op: validation and dispatch to a registered backend (torch_backend.py, numba.py, cuda.py)."""
from __future__ import annotations

from ..checks import check_device, check_finite, check_same_device, check_shape
from ..registry import resolve
from ..state import SLSTMState
from .reference import FORGET


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
    # a fused loop may check gx as it reads it
    _check_common(gx, R, H, Dh, forget, check_gx=not getattr(fn, "checks_gx", False))
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
