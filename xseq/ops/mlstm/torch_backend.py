"""The PyTorch backend of the mLSTM op (named "torch"): dtype handling around the reference (reference.py)
and the chunkwise form (chunkwise.py); every other backend falls back to it for what it does not cover."""
from __future__ import annotations

import math

from ..checks import compute_dtype
from ..registry import register_backend
from ..state import MLSTMState
from . import reference as mlstm_ref
from .chunkwise import mlstm_chunkwise


def _prepare(q, k, v, igate, fgate, state):
    """Upcast to the compute dtype, scale the keys, build or cast the state."""
    cd = compute_dtype(q, k, v, igate, fgate)
    q, k, v, igate, fgate = (x.to(cd) for x in (q, k, v, igate, fgate))
    k = k * (1.0 / math.sqrt(q.shape[-1]))
    if state is None:
        state = mlstm_ref.zero_state(q, v)
    else:
        state = MLSTMState(*(s.to(cd) for s in state))
    return q, k, v, igate, fgate, state


def _mlstm_torch(q, k, v, igate, fgate, state, *, mode, chunk_size):
    out_dtype = v.dtype
    had_state = state is not None
    q, k, v, igate, fgate, state = _prepare(q, k, v, igate, fgate, state)
    T = q.shape[2]
    if mode == "auto":
        mode = "recurrent" if T == 1 else "parallel" if T <= chunk_size else "chunkwise"
    if mode == "parallel":
        h, state = mlstm_ref.mlstm_parallel(q, k, v, igate, fgate, state if had_state else None)
    elif mode == "chunkwise":
        h, state = mlstm_chunkwise(q, k, v, igate, fgate, state, chunk_size)
    else:
        h, state = mlstm_ref.mlstm_recurrent(q, k, v, igate, fgate, state)
    return h.to(out_dtype), state


def _mlstm_step_torch(q, k, v, igate, fgate, state):
    out_dtype = v.dtype
    q, k, v, igate, fgate, state = _prepare(q, k, v, igate, fgate, state)
    h, state = mlstm_ref.mlstm_step(q, k, v, igate, fgate, state)
    return h.to(out_dtype), state


register_backend("mlstm", "torch", _mlstm_torch)
register_backend("mlstm_step", "torch", _mlstm_step_torch)
