"""The PyTorch backend of the sLSTM op (named "torch"): dtype handling around the reference (reference.py)."""
from __future__ import annotations

from ..checks import compute_dtype
from ..registry import register_backend
from ..state import SLSTMState
from . import reference as slstm_ref


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


register_backend("slstm", "torch", _slstm_torch)
register_backend("slstm_step", "torch", _slstm_step_torch)
