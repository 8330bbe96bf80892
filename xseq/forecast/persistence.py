"""Saving and loading a fitted XLSTMForecaster: weights and fitted state as tensors and plain values, so that
loading works with torch.load(weights_only=True)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from ..common.checkpoints import check_format, describe, first_line, safe_load
from .frames import Panel, Series

FORMAT = "xseq.XLSTMForecaster/2"
OLDER = ("xseq.XLSTMForecaster/1",)  # the formats of older xseq versions


def history_to_state(panel: Panel) -> dict:
    """The fitted histories as tensors and plain values (weights-only loading reads them back)."""
    if not all(isinstance(s.name, (str, int)) for s in panel.series):
        raise ValueError("save needs series names that are str or int")
    hist = [{"name": s.name, "values": torch.tensor(s.values), "index": _index_to_tensor(s.index),
             "covariates": None if s.covariates is None else torch.tensor(s.covariates)} for s in panel.series]
    freq = panel.freq if isinstance(panel.freq, int) else panel.freq.freqstr
    return {"fmt": panel.fmt, "freq": freq, "history": hist, "index_dtype": _index_dtype(panel.series[0].index),
            "covariate_names": list(panel.cov_names)}


def history_from_state(state: dict) -> Panel:
    freq = state["freq"] if isinstance(state["freq"], int) else pd.tseries.frequencies.to_offset(state["freq"])
    series = [Series(h["name"], _tensor_to_index(h["index"], state["index_dtype"]), h["values"].numpy(),
                     None if h["covariates"] is None else h["covariates"].numpy()) for h in state["history"]]
    return Panel(state["fmt"], series, freq, list(state["covariate_names"]))


def save_forecaster(model, path) -> None:
    state = {"format": FORMAT, "params": model.get_params(), "net": model.net_.state_dict(),
             "shift": torch.as_tensor(model.shift_), "scale": torch.as_tensor(model.scale_),
             "mase_scale": torch.as_tensor(model.mase_scale_), "ridge": model.ridge_,
             "n_future": model.n_future_, "static_spec": model.static_spec_,
             "static": None if model.static_ is None else torch.as_tensor(model.static_),
             **history_to_state(model.history_)}
    torch.save(state, path)


def load_forecaster(cls, path):
    """The XLSTMForecaster saved at `path` (a path or a binary file object), read with weights-only loading. A file
    holding a pickled object that could run code, a damaged file, another model's file or one of another xseq
    version is a ValueError naming the file."""
    state = check_format(safe_load(path, "xseq.XLSTMForecaster"), FORMAT, path, "XLSTMForecaster", OLDER)
    try:
        model = cls(**state["params"])
        model.history_ = history_from_state(state)
        series = model.history_.series
        model.series_names_, model.format_, model.freq_ = [s.name for s in series], state["fmt"], model.history_.freq
        model.covariate_names_ = list(state["covariate_names"])
        model.shift_, model.scale_, model.ridge_ = state["shift"].numpy(), state["scale"].numpy(), state["ridge"]
        model.mase_scale_, model.n_future_ = state["mase_scale"].numpy(), state["n_future"]
        model.static_spec_ = state["static_spec"]
        model.static_ = None if state["static"] is None else state["static"].numpy()
        model._check_params()
        net = model._build_net(len(model.covariate_names_), len(series))
        net.load_state_dict(state["net"])
    except (KeyError, TypeError, AttributeError, IndexError, ValueError, RuntimeError) as e:
        raise ValueError(f"{describe(path)} is not a complete, consistent saved XLSTMForecaster ({first_line(e)})"
                         ) from None
    if len(model.shift_) != len(series) or len(model.scale_) != len(series):
        raise ValueError(f"{describe(path)} is not a consistent saved XLSTMForecaster: {len(series)} series but "
                         f"{len(model.shift_)} scales")
    model.net_ = net.eval()
    return model


def _index_dtype(index: pd.Index) -> list:
    """[kind, unit, tz]: what it takes to rebuild the index exactly (pandas keeps ns, us, ... resolutions)."""
    if isinstance(index, pd.DatetimeIndex):
        return ["datetime", index.unit, None if index.tz is None else str(index.tz)]
    return ["int", str(index.dtype), None]


def _index_to_tensor(index: pd.Index) -> torch.Tensor:
    if isinstance(index, pd.DatetimeIndex):
        return torch.tensor(index.asi8)
    return torch.tensor(index.to_numpy(dtype=np.int64))


def _tensor_to_index(t: torch.Tensor, dtype: list) -> pd.Index:
    kind, unit, tz = dtype
    if kind == "datetime":
        index = pd.DatetimeIndex(t.numpy().astype(f"datetime64[{unit}]"))
        return index.tz_localize("UTC").tz_convert(tz) if tz else index
    return pd.Index(t.numpy().astype(unit))
