"""xseq: xLSTM (sLSTM and mLSTM) encoders with a parallel and a step-wise face, for sequence modelling."""
from . import ops
from .classify import XLSTMClassifier
from .forecast import ForecastEnsemble, TiRexForecaster, XLSTMForecaster
from .nn import MLSTMLayerConfig, SLSTMLayerConfig, XLSTMConfig, XLSTMEncoder
from .nn.stream import Stream

__version__ = "0.1.0"


def __getattr__(name):  # xseq.RecurrentPPO / xseq.PPOConfig without importing gymnasium for every user
    if name in ("RecurrentPPO", "PPOConfig"):
        from . import rl
        return getattr(rl, name)
    raise AttributeError(f"module 'xseq' has no attribute {name!r}")

__all__ = ["ops", "XLSTMForecaster", "ForecastEnsemble", "TiRexForecaster", "XLSTMClassifier", "XLSTMConfig",
           "MLSTMLayerConfig", "SLSTMLayerConfig", "XLSTMEncoder", "Stream", "RecurrentPPO", "PPOConfig",
           "__version__"]
