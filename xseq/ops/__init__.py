"""Cell math: functional mLSTM and sLSTM ops with plain references and dispatch to fused kernels."""
from ._dispatch import backends, register_backend
from ._state import MLSTMState, SLSTMState
from .mlstm import mlstm, mlstm_step
from .slstm import slstm, slstm_step

__all__ = ["mlstm", "mlstm_step", "slstm", "slstm_step", "MLSTMState", "SLSTMState", "backends",
           "register_backend"]
