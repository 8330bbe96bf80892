"""Recurrent PPO with xLSTM (or LSTM / feed-forward) actor-critics on Gymnasium; importing it registers
xseq/MaskedCartPole-v0, xseq/MaskedPendulum-v0 and xseq/CueRecall-v0."""
from . import envs as _envs
from .agent import RecurrentPPO
from .config import PPOConfig

_envs.register()

__all__ = ["RecurrentPPO", "PPOConfig"]
