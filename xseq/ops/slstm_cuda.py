"""Fused sLSTM for CUDA: the kernels of csrc/cuda/slstm_kernels.cu, JIT-compiled with ninja at first use
(torch.utils.cpp_extension, cached in torch's extension directory) and wired into autograd here.

Same math and saved tensors as the fused CPU loop (slstm_cpu.py): the forward pass keeps the gates, c and n
of every step and the h before it; the backward kernel walks back through time and returns the gradients
of the pre-activations (= of gx) and of the initial state; dR is one batched product over (B, T) here.
gx and R run as float32 or bfloat16 (float16 is computed in float32); state and accumulation are float32."""
from __future__ import annotations

from pathlib import Path

import torch

from ._state import SLSTMState

_SRC = Path(__file__).resolve().parents[2] / "csrc" / "cuda"
_EXT = None
MAX_HEAD_SIZE = 256  # kSLSTMMaxHeadSize in csrc/cuda/slstm_kernels.h: one thread per gate row, 4 * Dh per block


def extension():
    """The compiled extension (built on first use; later imports load it from torch's cache)."""
    global _EXT
    if _EXT is None:
        if not (_SRC / "slstm_kernels.cu").is_file():
            raise ImportError(f"the CUDA sources are not at {_SRC} (install xseq from a source checkout)")
        from torch.utils.cpp_extension import load

        _EXT = load(name="xseq_slstm_cuda", sources=[str(_SRC / "slstm_binding.cpp"), str(_SRC / "slstm_kernels.cu")],
                    extra_cflags=["-O3", "-std=c++17"], extra_cuda_cflags=["-O3", "-std=c++17"], verbose=False)
    return _EXT


class _FusedSLSTMCUDA(torch.autograd.Function):
    @staticmethod
    def forward(ctx, gx, R, c0, n0, m0, h0, exp_forget: bool):
        keep = any(ctx.needs_input_grad[:6])
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
        dpre, dlogf0 = extension().backward(RT, dh_out, dc, dn, dh, gates, cs, ns)
        # dR[g, hh] = sum over batch and time of h_{t-1}[hh]^T dpre_t[g, hh]
        dR = torch.einsum("tbhd,btghe->ghde", hprev, dpre)
        return dpre.to(ctx.gx_dtype), dR.to(R.dtype), dc, dn, dlogf0, dh, None


def slstm_fused_cuda(gx: torch.Tensor, R: torch.Tensor, state: SLSTMState, forget: str):
    """gx: (B, T, 4, H, Dh) and R: (4, H, Dh, Dh), float32 or bfloat16 on one CUDA device; state (c, n, m, h)
    each (B, H, Dh) float32. Returns h (B, T, H, Dh) in gx's dtype and the final SLSTMState in float32."""
    h, c, n, m, h_last = _FusedSLSTMCUDA.apply(gx, R, *state, forget == "exp")
    return h, SLSTMState(c, n, m, h_last)
