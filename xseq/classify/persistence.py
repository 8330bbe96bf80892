"""Saving and loading a fitted XLSTMClassifier: weights, classes and fitted state as tensors and plain values, so
that loading works with torch.load(weights_only=True) and opening someone else's file runs no code from it (a
pickle of the estimator, scikit-learn's usual way, would run whatever the file holds)."""
from __future__ import annotations

import numpy as np
import torch

from ..common.checkpoints import check_format, describe, first_line, safe_load

FORMAT = "xseq.XLSTMClassifier/1"
_LABEL_KINDS = "biufU"  # bool, int, unsigned, float, str labels
_ARRAY = "__xseq_ndarray__"


def _plain(v):
    """A fitted attribute as plain data (NumPy arrays as tagged tensors); ValueError for anything else."""
    if isinstance(v, np.ndarray):
        if v.dtype.kind not in "biuf":
            raise ValueError(f"an array of dtype {v.dtype}")
        return {_ARRAY: torch.from_numpy(v.copy())}
    if isinstance(v, np.generic):
        return v.item()
    if v is None or type(v) in (bool, int, float, str) or isinstance(v, torch.Tensor):
        return v
    if type(v) in (list, tuple):
        return type(v)(_plain(x) for x in v)
    if type(v) is dict and all(isinstance(k, str) for k in v):
        return {k: _plain(x) for k, x in v.items()}
    raise ValueError(f"a {type(v).__name__}")


def _unplain(v):
    if isinstance(v, dict):
        return v[_ARRAY].numpy() if _ARRAY in v else {k: _unplain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return type(v)(_unplain(x) for x in v)
    return v


def save_classifier(model, path) -> None:
    classes = model.classes_
    if classes.dtype.kind not in _LABEL_KINDS:
        raise ValueError(f"save needs labels that are numbers, bools or strings; got dtype {classes.dtype}")
    fitted = {}
    for k, v in vars(model).items():  # every other fitted attribute (the network's shape, times, epochs, ...)
        if k.endswith("_") and not k.startswith("_") and k not in ("net_", "classes_", "n_channels_"):
            try:
                fitted[k] = _plain(v)
            except ValueError as e:
                raise ValueError(f"cannot save the fitted attribute {k} as plain data: it holds {e}") from None
    state = {"format": FORMAT, "params": model.get_params(), "net": model.net_.state_dict(),
             "classes": classes.tolist(), "classes_dtype": classes.dtype.str, "n_channels": int(model.n_channels_),
             "fitted": fitted}
    torch.save(state, path)


def load_classifier(cls, path):
    """The XLSTMClassifier saved at `path` (a path or a binary file object). A file holding a pickled object that
    could run code, a damaged file, another model's file or one of another xseq version is a ValueError naming
    the file."""
    state = check_format(safe_load(path, "xseq.XLSTMClassifier"), FORMAT, path, "XLSTMClassifier")
    try:
        model = cls(**state["params"])
        model._check_params()
        dtype = np.dtype(state["classes_dtype"])
        if dtype.kind not in _LABEL_KINDS:
            raise ValueError(f"labels of dtype {dtype}")
        classes = np.array(state["classes"], dtype=dtype)
        n_channels = state["n_channels"]
        if classes.ndim != 1 or len(classes) < 2 or not isinstance(n_channels, int) or n_channels < 1:
            raise ValueError(f"{len(classes)} classes, {n_channels!r} channels")
        fitted = state["fitted"]
        if not isinstance(fitted, dict) or not all(isinstance(k, str) and k.endswith("_") for k in fitted):
            raise ValueError("its fitted attributes are not a dict of names ending in '_'")
        for k, v in fitted.items():  # before the network is built: its shape is one of them
            setattr(model, k, _unplain(v))
        net = model._build_net(n_channels, len(classes))
        net.load_state_dict(state["net"])
    except (KeyError, TypeError, AttributeError, IndexError, ValueError, RuntimeError) as e:
        raise ValueError(f"{describe(path)} is not a complete, consistent saved XLSTMClassifier ({first_line(e)})"
                         ) from None
    model.net_, model.classes_, model.n_channels_ = net.eval(), classes, n_channels
    return model
