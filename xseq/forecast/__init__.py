"""Forecasting: XLSTMForecaster (scikit-learn style, pandas in and out, Lightning underneath) and the
baselines every figure is printed beside."""
from typing import TYPE_CHECKING

from ..lazy import attach

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


__getattr__, __dir__ = attach(__name__, _LAZY)

__all__ = ["XLSTMForecaster", "ForecastEnsemble", "TiRexForecaster", "Backtest", "ForecastNet", "fit_centred_linear",
           "predict_centred_linear", "seasonal_naive"]
