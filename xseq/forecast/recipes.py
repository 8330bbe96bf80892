"""Forecasting recipes: a YAML file whose `forecaster` section maps one-to-one onto XLSTMForecaster's
parameters, an optional `ensemble` section onto ForecastEnsemble's (lookbacks, n_seeds), and whose `data`
section names the data set and protocol. Values may be rules in the data's horizon H and season m
(xseq.forecast.rules), so that one recipe carries over to a new frequency."""
from __future__ import annotations

import inspect
from pathlib import Path

import yaml

from .ensemble import ForecastEnsemble
from .estimator import XLSTMForecaster
from .rules import apply_rules

ENSEMBLE_FIELDS = ("lookbacks", "n_seeds")


def load_recipe(path) -> dict:
    text = Path(path).read_text()
    recipe = yaml.safe_load(text)
    if not isinstance(recipe, dict) or "forecaster" not in recipe:
        raise ValueError(f"{path}: a forecasting recipe needs a 'forecaster' section")
    known = set(inspect.signature(XLSTMForecaster.__init__).parameters) - {"self"}
    unknown = sorted(set(recipe["forecaster"]) - known)
    if unknown:
        raise ValueError(f"{path}: unknown forecaster field(s) {unknown}; known: {sorted(known)}")
    unknown = sorted(set(recipe.get("ensemble") or {}) - set(ENSEMBLE_FIELDS))
    if unknown:
        raise ValueError(f"{path}: unknown ensemble field(s) {unknown}; known: {list(ENSEMBLE_FIELDS)}")
    return recipe


def forecaster_from_recipe(path, *, rules: dict | None = None, **overrides) -> XLSTMForecaster:
    """The recipe's forecaster; rules: the values of H and m (e.g. {"H": 13, "m": 1}) for recipes written as
    rules; overrides: parameters to change."""
    params = apply_rules(load_recipe(path)["forecaster"], **(rules or {}))
    params.update(overrides)
    return XLSTMForecaster(**params)


def model_from_recipe(path, *, rules: dict | None = None, **overrides):
    """The recipe's model: a ForecastEnsemble where the recipe has an `ensemble` section, else the forecaster."""
    base = forecaster_from_recipe(path, rules=rules, **overrides)
    section = load_recipe(path).get("ensemble")
    if not section:
        return base
    section = apply_rules(section, **(rules or {}))
    return ForecastEnsemble(base, lookbacks=section.get("lookbacks"), n_seeds=section.get("n_seeds", 1))
