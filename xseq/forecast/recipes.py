"""Forecasting recipes: a YAML file whose `forecaster` section maps one-to-one onto XLSTMForecaster's
parameters, and whose `data` section names the data set and protocol."""
from __future__ import annotations

import inspect
from pathlib import Path

import yaml

from .estimator import XLSTMForecaster


def load_recipe(path) -> dict:
    text = Path(path).read_text()
    recipe = yaml.safe_load(text)
    if not isinstance(recipe, dict) or "forecaster" not in recipe:
        raise ValueError(f"{path}: a forecasting recipe needs a 'forecaster' section")
    known = set(inspect.signature(XLSTMForecaster.__init__).parameters) - {"self"}
    unknown = sorted(set(recipe["forecaster"]) - known)
    if unknown:
        raise ValueError(f"{path}: unknown forecaster field(s) {unknown}; known: {sorted(known)}")
    return recipe


def forecaster_from_recipe(path, **overrides) -> XLSTMForecaster:
    params = dict(load_recipe(path)["forecaster"])
    params.update(overrides)
    return XLSTMForecaster(**params)
