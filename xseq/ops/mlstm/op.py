"""The public mLSTM op: validation and dispatch to a registered backend (torch_backend.py, cuda.py)."""
from __future__ import annotations

from ..checks import check_device, check_finite, check_same_device, check_shape
from ..registry import resolve
from ..state import MLSTMState

MODES = ("auto", "parallel", "chunkwise", "recurrent")


def mlstm(q, k, v, igate, fgate, state=None, *, mode: str = "auto", chunk_size: int = 64, backend: str = "auto"):
    """mLSTM over a sequence (eqs 9-15), stabilised (eqs 46-48, 76-83).

    q, k: (B, H, T, Dqk); v: (B, H, T, Dv); igate, fgate: (B, H, T) gate pre-activations
    (i = exp(igate), f = sigmoid(fgate)); keys are scaled by 1/sqrt(Dqk) here.
    state: None or (C (B, H, Dqk, Dv), n (B, H, Dqk), m (B, H)) as returned by a previous call.
    Returns h (B, H, T, Dv), the normalised hidden state before the output gate, in v's dtype, and the
    final MLSTMState in float32 (float64 for float64 inputs).
    mode: "parallel" (quadratic), "chunkwise" (linear in T), "recurrent" (a loop of steps) or "auto".
    """
    B, H, T, Dqk, Dv = _check_sequence(q, k, v, igate, fgate)
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}; got {mode!r}")
    if not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive int; got {chunk_size!r}")
    state = check_state(state, B, H, Dqk, Dv, q.device)
    return resolve("mlstm", backend, q.device)(q, k, v, igate, fgate, state, mode=mode, chunk_size=chunk_size)


def mlstm_step(q, k, v, igate, fgate, state=None, *, backend: str = "auto", validate: bool = True):
    """One mLSTM step. q, k: (B, H, Dqk); v: (B, H, Dv); igate, fgate: (B, H).
    Returns h (B, H, Dv) in v's dtype and the new MLSTMState.
    validate=False skips the shape and finiteness checks, for callers that own their inputs and state (a
    stream checks each observation once, not every op of every block)."""
    if not validate:
        state = None if state is None else MLSTMState(*state)
        return resolve("mlstm_step", backend, q.device)(q, k, v, igate, fgate, state)
    names = ("q", "k", "v", "igate", "fgate")
    for name, x in zip(names, (q, k, v, igate, fgate)):
        check_shape(name, x, [None] * (2 if name.endswith("gate") else 3),
                    "(B, H)" if name.endswith("gate") else "(B, H, D)")
    B, H, Dqk = q.shape
    Dv = v.shape[-1]
    check_shape("k", k, (B, H, Dqk), "(B, H, Dqk) like q")
    check_shape("v", v, (B, H, None), "(B, H, Dv)")
    check_shape("igate", igate, (B, H), "(B, H)")
    check_shape("fgate", fgate, (B, H), "(B, H)")
    check_same_device(q=q, k=k, v=v, igate=igate, fgate=fgate)
    for name, x in zip(names, (q, k, v, igate, fgate)):
        check_finite(name, x)
    state = check_state(state, B, H, Dqk, Dv, q.device)
    return resolve("mlstm_step", backend, q.device)(q, k, v, igate, fgate, state)


def check_state(state, B: int, H: int, Dqk: int, Dv: int, device) -> MLSTMState | None:
    if state is None:
        return None
    if not isinstance(state, (tuple, list)) or len(state) != 3:
        raise ValueError(f"state must be None or a tuple (C, n, m); got {type(state).__name__}")
    C, n, m = state
    check_shape("state.C", C, (B, H, Dqk, Dv), "(B, H, Dqk, Dv)")
    check_shape("state.n", n, (B, H, Dqk), "(B, H, Dqk)")
    check_shape("state.m", m, (B, H), "(B, H)")
    for name, t in (("state.C", C), ("state.n", n), ("state.m", m)):
        check_device(name, t, device)
    check_finite("state.C", C)
    check_finite("state.n", n)
    check_finite("state.m", m, allow_neg_inf=True)
    return MLSTMState(C, n, m)


def _check_sequence(q, k, v, igate, fgate):
    check_shape("q", q, (None, None, None, None), "(B, H, T, Dqk)")
    B, H, T, Dqk = q.shape
    check_shape("k", k, (B, H, T, Dqk), "(B, H, T, Dqk) like q")
    check_shape("v", v, (B, H, T, None), "(B, H, T, Dv)")
    check_shape("igate", igate, (B, H, T), "(B, H, T)")
    check_shape("fgate", fgate, (B, H, T), "(B, H, T)")
    if T == 0:
        raise ValueError("q must have at least one time step (T >= 1); got T = 0")
    check_same_device(q=q, k=k, v=v, igate=igate, fgate=fgate)
    for name, x in zip(("q", "k", "v", "igate", "fgate"), (q, k, v, igate, fgate)):
        check_finite(name, x)
    return B, H, T, Dqk, v.shape[-1]
