"""Cell math: the functional mLSTM and sLSTM ops, each with a plain PyTorch reference and fused backends.

  registry.py   one registry of backends per op; `backend="auto"` takes the best one available
  mlstm/, slstm/  one folder per cell: the public op, its reference, its fast forms, its backends
  checks.py     input validation shared by the ops; state.py the cells' state tuples
  cuda_ext.py   builds the CUDA extensions of csrc/cuda at first use"""
from .mlstm import mlstm, mlstm_step
from .registry import backends, register_backend, resolve
from .slstm import slstm, slstm_step
from .state import MLSTMState, SLSTMState

__all__ = ["mlstm", "mlstm_step", "slstm", "slstm_step", "MLSTMState", "SLSTMState", "backends",
           "register_backend", "resolve"]
