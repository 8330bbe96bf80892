"""Sequence classification: XLSTMClassifier (scikit-learn style) and its network."""
import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the same imports, eager, for type checkers and tests/importgraph.py
    from .estimator import XLSTMClassifier

_LAZY = {
    "XLSTMClassifier": ".estimator",
}


def __getattr__(name):  # PEP 562: a name is imported on first use, so `import xseq.classify` costs nothing up front
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


__all__ = ["XLSTMClassifier"]
