"""Public mLSTM op: validation, dtype handling and dispatch to a backend and a mode."""
from __future__ import annotations

import math

import torch

from . import mlstm_ref
from ._checks import check_device, check_finite, check_same_device, check_shape, compute_dtype
from ._dispatch import register_backend, resolve
from ._state import MLSTMState
from .mlstm_chunkwise import mlstm_chunkwise

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
        return resolve("mlstm_step", backend, q.device)(q, k, v, igate, fgate, None if state is None else MLSTMState(*state))
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


# The fused step passed its gpu tests on an H200 and runs 3.5-5.8x faster than the PyTorch step (B = 1 to 256,
# 2026-11-30): above the reference. The chunkwise kernels passed too but are not yet faster than the PyTorch
# chunkwise form at Dqk = 256 (benchmarks/kernels_gpu.py, csrc/cuda/NOTES.md): below it, opt in with
# backend="cuda".
CUDA_PRIORITY = -1
STEP_CUDA_PRIORITY = 20


def _mlstm_step_cuda(q, k, v, igate, fgate, state):
    """The fused CUDA step (mlstm_cuda.py) where no gradient is needed: float32, or bfloat16 when v is
    bfloat16; autograd, float64 and a failed build (one warning) take the PyTorch step."""
    from ._cuda_ext import usable
    from .mlstm_cuda import mlstm_step_cuda

    inputs = (q, k, v, igate, fgate) + (() if state is None else tuple(state))
    needs_grad = torch.is_grad_enabled() and any(x.requires_grad for x in inputs)
    if needs_grad or compute_dtype(q, k, v, igate, fgate) != torch.float32 or not usable("mlstm", "mLSTM step"):
        return _mlstm_step_torch(q, k, v, igate, fgate, state)
    if state is None:
        state = mlstm_ref.zero_state(q.float(), v.float())
    dt = torch.bfloat16 if v.dtype == torch.bfloat16 else torch.float32
    h, state = mlstm_step_cuda(q, k, v, igate, fgate, state, dt)
    return h.to(v.dtype), state


def _mlstm_cuda(q, k, v, igate, fgate, state, *, mode, chunk_size):
    """The chunkwise CUDA kernels (mlstm_cuda.py, chunks of 64 steps: chunk_size tunes the PyTorch form only):
    bfloat16 when v is bfloat16, else float32; an explicit mode other than "chunkwise", float64, Dqk over 256
    and a failed build (one warning) take the PyTorch path."""
    from ._cuda_ext import usable
    from .mlstm_cuda import MAX_DQK, mlstm_chunkwise_cuda

    if (mode not in ("auto", "chunkwise") or compute_dtype(q, k, v, igate, fgate) != torch.float32
            or q.shape[-1] > MAX_DQK or not usable("mlstm", "mLSTM")):
        return _mlstm_torch(q, k, v, igate, fgate, state, mode=mode, chunk_size=chunk_size)
    if state is None:
        state = mlstm_ref.zero_state(q.float(), v.float())
    else:
        state = MLSTMState(*(s.float() for s in state))
    dt = torch.bfloat16 if v.dtype == torch.bfloat16 else torch.float32
    h, state = mlstm_chunkwise_cuda(q, k, v, igate, fgate, state, dt)
    return h.to(v.dtype), state


register_backend("mlstm", "torch", _mlstm_torch)
register_backend("mlstm", "cuda", _mlstm_cuda, available=lambda device: device.type == "cuda",
                 priority=CUDA_PRIORITY)
register_backend("mlstm_step", "torch", _mlstm_step_torch)
register_backend("mlstm_step", "cuda", _mlstm_step_cuda, available=lambda device: device.type == "cuda",
                 priority=STEP_CUDA_PRIORITY)
