"""xseq: xLSTM (sLSTM and mLSTM) encoders with a parallel and a step-wise face, for sequence modelling."""
from . import ops
from .classify import XLSTMClassifier
from .forecast import XLSTMForecaster
from .nn import MLSTMLayerConfig, SLSTMLayerConfig, XLSTMConfig, XLSTMEncoder
from .stream import Stream

__version__ = "0.1.0"
__all__ = ["ops", "XLSTMForecaster", "XLSTMClassifier", "XLSTMConfig", "MLSTMLayerConfig", "SLSTMLayerConfig", "XLSTMEncoder", "Stream", "__version__"]
