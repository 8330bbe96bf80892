"""Sequence classification: XLSTMClassifier (scikit-learn style) and its network."""
from .estimator import XLSTMClassifier

__all__ = ["XLSTMClassifier"]
