"""mLSTM on CUDA: the fused step (csrc/cuda/mlstm_kernels.cu) for generation and streaming without autograd,
one kernel per step instead of a dozen PyTorch ops; and the chunkwise forward and backward over sequences
(csrc/cuda/mlstm_chunk_kernels.cu forward, mlstm_chunk_bwd_kernels.cu backward), wired into autograd here.
JIT-compiled with ninja at first use (torch's extension cache). Registers the backend "cuda" of the ops "mlstm"
and "mlstm_step"."""
from __future__ import annotations

import math

import torch

from .. import cuda_ext
from ..checks import compute_dtype
from ..registry import keep_for_backward, register_backend
from ..state import MLSTMState
from . import reference as mlstm_ref
from .torch_backend import _mlstm_step_torch, _mlstm_torch

MAX_DQK = 256  # kMLSTMMaxDqk in csrc/cuda/mlstm_kernels.h
# bfloat16: the float32 SIMT kernels instead of the tensor-core ones (for comparisons)
SIMT_OUTPUT = False
SIMT_GRAD = False


def extension():
    return cuda_ext.load("mlstm")


def mlstm_step_cuda(q, k, v, igate, fgate, state: MLSTMState, dtype: torch.dtype):
    """q, k (B, H, Dqk) unscaled, v (B, H, Dv), gates (B, H), run in `dtype` (float32 or bfloat16); state
    float32. Returns h (B, H, Dv) in `dtype` and a new MLSTMState (the kernel writes it out of place: the given
    one is left unchanged, without a copy)."""
    C, n, m = (s.float().contiguous() for s in state)
    h, C, n, m = extension().step(*(x.to(dtype).contiguous() for x in (q, k, v, igate, fgate)), C, n, m)
    return h, MLSTMState(C, n, m)


def _revcumsum(x: torch.Tensor) -> torch.Tensor:
    return x.flip(-1).cumsum(-1).flip(-1)


class _ChunkwiseMLSTMCUDA(torch.autograd.Function):
    """The chunkwise kernels (csrc/cuda/mlstm_chunk_{,bwd_}kernels.cu) in autograd. The kernels return dq, dk and dv;
    the gate gradients follow from them exactly, because every log gate weight multiplies a q.k product:
    d itil_j = k_j . dk_j, and d log f_s = sum_{t >= s} q_t . dq_t - sum_{j >= s} k_j . dk_j + <dC_T, C_T> +
    <dn_T, n_T> (the last two: the final state's share). The initial m gets <dC_0, C_0> + <dn_0, n_0>.
    Between the passes only O(B H T) tensors besides the inputs are kept: the backward pass reruns the chunk
    recurrence for the states entering each chunk (B H NC Dqk Dv floats, 4 GB at B=H=8, T=16k, D=256)."""

    @staticmethod
    def forward(ctx, q, k, v, igate, fgate, C0, n0, m0, keep: bool):
        scale = 1.0 / math.sqrt(q.shape[-1])
        ks = k.detach().contiguous()  # unscaled: the kernels scale it in float32
        C = C0.detach().float().contiguous().clone()
        h, n, m, Cin, nin, m_in, mrow, den = extension().chunk_forward(
            q.detach().contiguous(), ks, v.detach().contiguous(), igate.detach().contiguous(),
            fgate.detach().contiguous(), C, n0.detach().float().contiguous(), m0.detach().float().contiguous(),
            SIMT_OUTPUT)
        del Cin, nin, m_in  # recomputed by the backward pass: B H NC Dqk Dv floats are not kept between passes
        if keep:
            ctx.save_for_backward(q, ks, v, igate, fgate, mrow, den, C, n, m, C0, n0, m0)
            ctx.scale = scale
        ctx.mark_non_differentiable(m)
        return h, C, n, m

    @staticmethod
    def backward(ctx, dh, dC_T, dn_T, _dm_T):
        q, ks, v, igate, fgate, mrow, den, C_T, n_T, m_T, C0, n0, m0 = ctx.saved_tensors
        ext = extension()
        _, _, Cin, nin, m_in = ext.chunk_states(
            ks, v.detach().contiguous(), igate.detach().contiguous(), fgate.detach().contiguous(),
            C0.detach().float().contiguous().clone(), n0.detach().float().contiguous(),
            m0.detach().float().contiguous())
        dh = v.new_zeros(v.shape, dtype=torch.float32) if dh is None else dh.float().contiguous()
        dC = torch.zeros_like(C_T) if dC_T is None else dC_T.float().contiguous().clone()
        dn = torch.zeros_like(n_T) if dn_T is None else dn_T.float().contiguous().clone()
        final_share = (dC * C_T).sum((-1, -2)) + (dn * n_T).sum(-1)  # (B, H)
        dq, dks, dv = ext.chunk_backward(q.detach().contiguous(), ks.detach(), v.detach().contiguous(),
                                         igate.detach().contiguous(), fgate.detach().contiguous(), dh, mrow, den,
                                         Cin, nin, m_in, m_T, dC, dn, SIMT_GRAD)
        # in float64: the sums cancel where a gate barely matters, and float32 running sums over T would
        # leave their rounding in those small gradients (O(B H T) work, negligible beside the kernels)
        dig = (ks.double() * ctx.scale * dks.double()).sum(-1)
        dlogf = (_revcumsum((q.double() * dq.double()).sum(-1)) - _revcumsum(dig)
                 + final_share.double().unsqueeze(-1))
        dfg = dlogf * torch.sigmoid(-fgate.double())
        C0f = torch.nan_to_num(C0.float(), nan=0.0)
        dm0 = (dC * C0f).sum((-1, -2)) + (dn * n0.float()).sum(-1)
        return (dq.to(q.dtype), (dks * ctx.scale).to(ks.dtype), dv.to(v.dtype), dig.to(igate.dtype),
                dfg.to(fgate.dtype), dC.to(C0.dtype), dn.to(n0.dtype), dm0.to(C0.dtype), None)


def mlstm_chunkwise_cuda(q, k, v, igate, fgate, state: MLSTMState, dtype: torch.dtype):
    """q, k (B, H, T, Dqk) unscaled, v (B, H, T, Dv), gates (B, H, T), run in `dtype` (float32 or bfloat16);
    state float32. Returns h (B, H, T, Dv) in `dtype` and the final MLSTMState (float32)."""
    inputs = [x.to(dtype) for x in (q, k, v, igate, fgate)]
    keep = keep_for_backward(*inputs, *state)
    h, C, n, m = _ChunkwiseMLSTMCUDA.apply(*inputs, *state, keep)
    return h, MLSTMState(C, n, m)


# The fused step passed its gpu tests on an H200 and runs 3.5-5.8x faster than the PyTorch step (B = 1 to 256,
# 2026-11-30): above the reference. The chunkwise kernels passed too but are not yet faster than the PyTorch
# chunkwise form at Dqk = 256 (benchmarks/kernels_gpu.py, csrc/cuda/NOTES.md): below it, opt in with
# backend="cuda".
CUDA_PRIORITY = -1
STEP_CUDA_PRIORITY = 20


def _mlstm_step_cuda(q, k, v, igate, fgate, state):
    """The fused CUDA step (mlstm_cuda.py) where no gradient is needed: float32, or bfloat16 when v is
    bfloat16; autograd, float64 and a failed build (one warning) take the PyTorch step."""
    inputs = (q, k, v, igate, fgate) + (() if state is None else tuple(state))
    needs_grad = torch.is_grad_enabled() and any(x.requires_grad for x in inputs)
    if (needs_grad or compute_dtype(q, k, v, igate, fgate) != torch.float32
            or not cuda_ext.usable("mlstm", "mLSTM step")):
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
    if (mode not in ("auto", "chunkwise") or compute_dtype(q, k, v, igate, fgate) != torch.float32
            or q.shape[-1] > MAX_DQK or not cuda_ext.usable("mlstm", "mLSTM")):
        return _mlstm_torch(q, k, v, igate, fgate, state, mode=mode, chunk_size=chunk_size)
    if state is None:
        state = mlstm_ref.zero_state(q.float(), v.float())
    else:
        state = MLSTMState(*(s.float() for s in state))
    dt = torch.bfloat16 if v.dtype == torch.bfloat16 else torch.float32
    h, state = mlstm_chunkwise_cuda(q, k, v, igate, fgate, state, dt)
    return h.to(v.dtype), state


register_backend("mlstm", "cuda", _mlstm_cuda, available=lambda device: device.type == "cuda",
                 priority=CUDA_PRIORITY)
register_backend("mlstm_step", "cuda", _mlstm_step_cuda, available=lambda device: device.type == "cuda",
                 priority=STEP_CUDA_PRIORITY)
