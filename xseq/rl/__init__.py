"""Recurrent PPO with xLSTM (or LSTM / feed-forward) actor-critics on Gymnasium; importing it registers
xseq/MaskedCartPole-v0, xseq/MaskedPendulum-v0 and xseq/CueRecall-v0 (the agent itself, and torch, are
imported on first use)."""
from typing import TYPE_CHECKING

from ..lazy import attach
from . import envs as _envs

if TYPE_CHECKING:  # the same imports, eager, for type checkers and tests/importgraph.py
    from .agent import RecurrentPPO
    from .config import PPOConfig

_envs.register()

_LAZY = {"RecurrentPPO": ".agent", "PPOConfig": ".config"}


__getattr__, __dir__ = attach(__name__, _LAZY)

__all__ = ["RecurrentPPO", "PPOConfig"]
