"""Forecasting: XLSTMForecaster (scikit-learn style, pandas in and out, Lightning underneath) and the
baselines every figure is printed beside."""
from .baselines import fit_centred_linear, predict_centred_linear, seasonal_naive
from .ensemble import ForecastEnsemble
from .estimator import Backtest, XLSTMForecaster
from .model import ForecastNet
from .pretrained import TiRexForecaster

__all__ = ["XLSTMForecaster", "ForecastEnsemble", "TiRexForecaster", "Backtest", "ForecastNet", "fit_centred_linear",
           "predict_centred_linear", "seasonal_naive"]
