"""Fused sLSTM for CUDA: the kernels of csrc/cuda/slstm_kernels.cu, JIT-compiled with ninja at first use
(torch.utils.cpp_extension, cached in torch's extension directory) and wired into autograd here.

Same math and saved tensors as the fused CPU loop (slstm_cpu.py): the forward pass keeps the gates, c and n
of every step and the h before it; the backward kernel walks back through time and returns the gradients
of the pre-activations (= of gx) and of the initial state; dR is one batched product over (B, T) here.
gx and R run as float32 or bfloat16 (float16 is computed in float32); state and accumulation are float32."""
from __future__ import annotations

import torch

from .. import cuda_ext
from ..checks import compute_dtype
from ..registry import keep_for_backward, register_backend
from ..state import SLSTMState
from .torch_backend import _slstm_torch

MAX_HEAD_SIZE = 256  # kSLSTMMaxHeadSize in csrc/cuda/slstm_kernels.h: one thread per gate row, 4 * Dh per block


def extension():
    return cuda_ext.load("slstm")


class _FusedSLSTMCUDA(torch.autograd.Function):
    @staticmethod
    def forward(ctx, gx, R, c0, n0, m0, h0, exp_forget: bool, grad_clip, keep: bool):
        ctx.clip = float("inf") if grad_clip is None else float(grad_clip)
        c, n, m, h = (s.detach().float().contiguous().clone() for s in (c0, n0, m0, h0))
        hout, gates, cs, ns, hprev = extension().forward(gx.detach().contiguous(), R.detach().contiguous(),
                                                         c, n, m, h, exp_forget, keep)
        if keep:
            ctx.save_for_backward(R, gates, cs, ns, hprev)
            ctx.gx_dtype = gx.dtype
        ctx.mark_non_differentiable(m)
        return hout, c, n, m, h

    @staticmethod
    def backward(ctx, dh_out, dc_T, dn_T, _dm_T, dh_T):
        R, gates, cs, ns, hprev = ctx.saved_tensors
        T, B, H, Dh = hprev.shape

        def grad(g, shape):
            return gates.new_zeros(shape) if g is None else g.float().contiguous().clone()

        dc, dn, dh = (grad(g, (B, H, Dh)) for g in (dc_T, dn_T, dh_T))
        dh_out = grad(dh_out, (B, T, H, Dh))
        RT = R.detach().float().transpose(-1, -2).contiguous()
        dpre, dlogf0 = extension().backward(RT, dh_out, dc, dn, dh, gates, cs, ns, ctx.clip)
        # dR[g, hh] = sum over batch and time of h_{t-1}[hh]^T dpre_t[g, hh]
        dR = torch.einsum("tbhd,btghe->ghde", hprev, dpre)
        return dpre.to(ctx.gx_dtype), dR.to(R.dtype), dc, dn, dlogf0, dh, None, None, None


def slstm_fused_cuda(gx: torch.Tensor, R: torch.Tensor, state: SLSTMState, forget: str,
                     grad_clip: float | None = None):
    """gx: (B, T, 4, H, Dh) and R: (4, H, Dh, Dh), float32 or bfloat16 on one CUDA device; state (c, n, m, h)
    each (B, H, Dh) float32. Returns h (B, T, H, Dh) in gx's dtype and the final SLSTMState in float32;
    grad_clip clamps the gradient reaching h_{t-1} through R."""
    keep = keep_for_backward(gx, R, *state)
    h, c, n, m, h_last = _FusedSLSTMCUDA.apply(gx, R, *state, forget == "exp", grad_clip, keep)
    return h, SLSTMState(c, n, m, h_last)


# above the reference: the kernels passed their gpu tests on an H200 (both layouts, 2026-11-30) and run the
# B=16, T=2048 benchmark 49-76x faster than the reference forward (benchmarks/kernels_gpu.py)
CUDA_PRIORITY = 20


def _slstm_cuda(gx, R, state, *, forget, grad_clip=None):
    """The fused CUDA kernels (slstm_cuda.py): bfloat16 when gx is bfloat16 (R then runs in bfloat16 too),
    else float32; float64, head sizes over 256 and a failed build (one warning) run the reference."""
    if compute_dtype(gx, R) != torch.float32 or gx.shape[-1] > MAX_HEAD_SIZE or not cuda_ext.usable("slstm", "sLSTM"):
        return _slstm_torch(gx, R, state, forget=forget, grad_clip=grad_clip)
    dt = torch.bfloat16 if gx.dtype == torch.bfloat16 else torch.float32
    if state is None:
        z = gx.new_zeros(gx.shape[0], gx.shape[-2], gx.shape[-1], dtype=torch.float32)
        state = SLSTMState(z, z.clone(), torch.full_like(z, float("-inf")), z.clone())
    else:
        state = SLSTMState(*(s.float() for s in state))
    h, state = slstm_fused_cuda(gx.to(dt), R.to(dt), state, forget, grad_clip)
    return h.to(gx.dtype), state


register_backend("slstm", "cuda", _slstm_cuda, available=lambda device: device.type == "cuda",
                 priority=CUDA_PRIORITY)
