"""Sequence classification: XLSTMClassifier (scikit-learn style) and its network."""
from typing import TYPE_CHECKING

from ..lazy import attach

if TYPE_CHECKING:  # the same imports, eager, for type checkers and tests/importgraph.py
    from .estimator import XLSTMClassifier

_LAZY = {
    "XLSTMClassifier": ".estimator",
}


__getattr__, __dir__ = attach(__name__, _LAZY)

__all__ = ["XLSTMClassifier"]
