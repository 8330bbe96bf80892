"""The mLSTM cell (eqs 9-15, stabilised by eqs 46-48 and 76-83).

  op.py             the public op: mlstm (a sequence) and mlstm_step (one step), validation and dispatch
  reference.py      plain PyTorch, written beside the paper: recurrent, parallel (eqs 68-102)
  chunkwise.py      the chunkwise form in PyTorch (linear in T)
  torch_backend.py  the backend "torch": dtype handling around the reference and the chunkwise form
  cuda.py           the backend "cuda": fused step and chunkwise kernels (csrc/cuda)
  block_step.py     the backend "numba" of the op "mlstm_block_step": a whole block's step in one call
Every backend registers itself in xseq.ops.registry on import."""
from . import block_step, cuda, torch_backend  # noqa: F401  (register their backends)
from .op import MODES, check_state, mlstm, mlstm_step

__all__ = ["mlstm", "mlstm_step", "check_state", "MODES"]
