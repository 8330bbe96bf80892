"""Fused mLSTM step for CUDA (csrc/cuda/mlstm_kernels.cu): generation and streaming without autograd, one
kernel per step instead of a dozen PyTorch ops. JIT-compiled with ninja at first use (torch's extension
cache). The chunkwise training kernels are not written yet; sequences run the PyTorch chunkwise form."""
from __future__ import annotations

from pathlib import Path

import torch

from ._state import MLSTMState

_SRC = Path(__file__).resolve().parents[2] / "csrc" / "cuda"
_EXT = None


def extension():
    global _EXT
    if _EXT is None:
        if not (_SRC / "mlstm_kernels.cu").is_file():
            raise ImportError(f"the CUDA sources are not at {_SRC} (install xseq from a source checkout)")
        from torch.utils.cpp_extension import load

        _EXT = load(name="xseq_mlstm_cuda", sources=[str(_SRC / "mlstm_binding.cpp"), str(_SRC / "mlstm_kernels.cu")],
                    extra_cflags=["-O3", "-std=c++17"], extra_cuda_cflags=["-O3", "-std=c++17"], verbose=False)
    return _EXT


def mlstm_step_cuda(q, k, v, igate, fgate, state: MLSTMState, dtype: torch.dtype):
    """q, k (B, H, Dqk) unscaled, v (B, H, Dv), gates (B, H), run in `dtype` (float32 or bfloat16); state
    float32. Returns h (B, H, Dv) in `dtype` and a new MLSTMState (the given one is left unchanged)."""
    C, n, m = (s.float().contiguous().clone() for s in state)
    h = extension().step(*(x.to(dtype).contiguous() for x in (q, k, v, igate, fgate)), C, n, m)
    return h, MLSTMState(C, n, m)
