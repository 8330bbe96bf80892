"""The sLSTM cell (eqs 28-34, stabilised by eqs 46-48), with block-diagonal (per head) recurrence.

  op.py             the public op: slstm (a sequence) and slstm_step (one step), validation and dispatch
  reference.py      plain PyTorch, written beside the paper
  torch_backend.py  the backend "torch": dtype handling around the reference
  numba_math.py     the cell's scalar math for compiled CPU code, written once (eqs 46-50)
  cpu.py            the backend "numba": the fused CPU time loop, forward and backward
  cuda.py           the backend "cuda": fused kernels (csrc/cuda)
  block_step.py     the backend "numba" of the op "slstm_block_step": a whole block's step in one call
Every backend registers itself in xseq.ops.registry on import."""
from . import block_step, cpu, cuda, torch_backend  # noqa: F401  (register their backends)
from .op import check_state, slstm, slstm_step
from .reference import FORGET

__all__ = ["slstm", "slstm_step", "check_state", "FORGET"]
