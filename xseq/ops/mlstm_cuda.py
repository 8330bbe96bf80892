"""Fused mLSTM step for CUDA (csrc/cuda/mlstm_kernels.cu): generation and streaming without autograd, one
kernel per step instead of a dozen PyTorch ops. JIT-compiled with ninja at first use (torch's extension
cache). The chunkwise training kernels are not written yet; sequences run the PyTorch chunkwise form."""
from __future__ import annotations

import torch

from ._cuda_ext import load
from ._state import MLSTMState


def extension():
    return load("mlstm")


def mlstm_step_cuda(q, k, v, igate, fgate, state: MLSTMState, dtype: torch.dtype):
    """q, k (B, H, Dqk) unscaled, v (B, H, Dv), gates (B, H), run in `dtype` (float32 or bfloat16); state
    float32. Returns h (B, H, Dv) in `dtype` and a new MLSTMState (the given one is left unchanged)."""
    C, n, m = (s.float().contiguous().clone() for s in state)
    h = extension().step(*(x.to(dtype).contiguous() for x in (q, k, v, igate, fgate)), C, n, m)
    return h, MLSTMState(C, n, m)
