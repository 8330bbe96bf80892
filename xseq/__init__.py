"""xseq: xLSTM (sLSTM and mLSTM) encoders with a parallel and a step-wise face, for sequence modelling.

The public names below are imported on first use (PEP 562): `import xseq` is instant, and the command line
answers --help without loading torch."""
from typing import TYPE_CHECKING

from .lazy import attach

__version__ = "0.1.0"

if TYPE_CHECKING:  # the same imports, eager, for type checkers and tests/importgraph.py
    from . import ops
    from .classify import XLSTMClassifier
    from .forecast import ForecastEnsemble, TiRexForecaster, XLSTMForecaster
    from .nn import MLSTMLayerConfig, SLSTMLayerConfig, XLSTMConfig, XLSTMEncoder
    from .nn.stream import Stream
    from .rl import PPOConfig, RecurrentPPO

_LAZY = {
    "XLSTMForecaster": ".forecast", "ForecastEnsemble": ".forecast", "TiRexForecaster": ".forecast",
    "XLSTMClassifier": ".classify",
    "XLSTMConfig": ".nn", "MLSTMLayerConfig": ".nn", "SLSTMLayerConfig": ".nn", "XLSTMEncoder": ".nn",
    "Stream": ".nn.stream",
    "RecurrentPPO": ".rl", "PPOConfig": ".rl",
    "ops": ".ops",
}


__getattr__, __dir__ = attach(__name__, _LAZY)

__all__ = ["ops", "XLSTMForecaster", "ForecastEnsemble", "TiRexForecaster", "XLSTMClassifier", "XLSTMConfig",
           "MLSTMLayerConfig", "SLSTMLayerConfig", "XLSTMEncoder", "Stream", "RecurrentPPO", "PPOConfig",
           "__version__"]
