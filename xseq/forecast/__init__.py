"""Forecasting: XLSTMForecaster (scikit-learn style, pandas in and out, Lightning underneath) and the
baselines every figure is printed beside."""
import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the same imports, eager, for type checkers and tests/importgraph.py
    from .baselines import fit_centred_linear, predict_centred_linear, seasonal_naive
    from .ensemble import ForecastEnsemble
    from .estimator import Backtest, XLSTMForecaster
    from .model import ForecastNet
    from .pretrained import TiRexForecaster

_LAZY = {
    "fit_centred_linear": ".baselines",
    "predict_centred_linear": ".baselines",
    "seasonal_naive": ".baselines",
    "ForecastEnsemble": ".ensemble",
    "Backtest": ".estimator",
    "XLSTMForecaster": ".estimator",
    "ForecastNet": ".model",
    "TiRexForecaster": ".pretrained",
}


def __getattr__(name):  # PEP 562: a name is imported on first use, so `import xseq.forecast` costs nothing up front
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


__all__ = ["XLSTMForecaster", "ForecastEnsemble", "TiRexForecaster", "Backtest", "ForecastNet", "fit_centred_linear",
           "predict_centred_linear", "seasonal_naive"]
