"""Recurrent PPO with xLSTM (or LSTM / feed-forward) actor-critics on Gymnasium; importing it registers
xseq/MaskedCartPole-v0, xseq/MaskedPendulum-v0 and xseq/CueRecall-v0 (the agent itself, and torch, are
imported on first use)."""
import importlib
from typing import TYPE_CHECKING

from . import envs as _envs

if TYPE_CHECKING:  # the same imports, eager, for type checkers and tests/importgraph.py
    from .agent import RecurrentPPO
    from .config import PPOConfig

_envs.register()

_LAZY = {"RecurrentPPO": ".agent", "PPOConfig": ".config"}


def __getattr__(name):  # PEP 562
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


__all__ = ["RecurrentPPO", "PPOConfig"]
