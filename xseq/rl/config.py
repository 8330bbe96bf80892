"""PPOConfig: every knob of xseq.rl.RecurrentPPO. A recipe YAML maps onto it one-to-one (`xlstm` onto
XLSTMConfig); observation and action sizes never appear here, they come from the environment."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..nn.config import XLSTMConfig

ENCODERS = ("xlstm", "lstm", "mlp")
VECTOR = ("sync", "async")


def _default_xlstm() -> XLSTMConfig:
    # one sLSTM block (recurrent memory mixing) of width 64, no gated MLP beyond the paper's default
    return XLSTMConfig(d_model=64, layout="s", slstm={"num_heads": 4, "conv_kernel": 4})


@dataclass
class PPOConfig:
    env: str | None = None  # a registered Gymnasium id; the env passed to RecurrentPPO overrides it
    env_kwargs: dict = field(default_factory=dict)  # passed to gymnasium.make
    num_envs: int = 8
    rollout_steps: int = 32  # per env and rollout
    minibatch_size: int = 256  # env steps per minibatch: whole sequences of rollout_steps each
    epochs: int = 20
    gamma: float = 0.98
    gae_lambda: float = 0.8
    learning_rate: float = 1e-3
    anneal_lr: bool = True  # linear to 0 over learn()'s total steps
    clip_range: float = 0.2
    anneal_clip: bool = True  # linear to 0 over learn()'s total steps
    ent_coef: float = 0.0
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    normalize_obs: bool = True
    normalize_reward: bool = True
    clip_obs: float = 10.0
    clip_reward: float = 10.0
    encoder: str = "xlstm"  # "xlstm", "lstm" (torch.nn.LSTM through the same code) or "mlp" (feed-forward)
    xlstm: XLSTMConfig = field(default_factory=_default_xlstm)
    hidden_size: int = 64  # the width of the lstm and mlp encoders and of the observation embedding
    shared: bool = False  # one encoder for actor and critic, or one each
    frame_stack: int = 1  # feed the last k observations (zeros before the episode start)
    # the agent's own episode clock: time_features sinusoids (sin and cos at time_features / 2 frequencies,
    # geometric from 1 to 1 / time_horizon radians per step) of the step index in the episode, counted from 0
    # at each episode start, appended to the encoder input (0: none)
    time_features: int = 0
    time_horizon: float = 1000.0
    vector: str = "sync"  # gymnasium vector env: "sync" or "async" (subprocesses)
    threads: int = 1  # torch threads while learning; small policies are fastest on one
    eval_interval: int = 10_000  # env steps between deterministic evaluations (0: none)
    eval_episodes: int = 20
    total_steps: int = 100_000  # the default of `xseq rl train`
    log_dir: str | None = None  # CSV (and TensorBoard when installed) logs, checkpoints and plots

    def __post_init__(self):
        if isinstance(self.xlstm, dict):
            self.xlstm = XLSTMConfig.from_dict(self.xlstm)
        self.validate()

    def validate(self) -> None:
        for name in ("num_envs", "rollout_steps", "minibatch_size", "epochs", "hidden_size", "frame_stack",
                     "threads", "eval_episodes", "total_steps"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"PPOConfig.{name} must be a positive int; got {v!r}")
        if (not isinstance(self.time_features, int) or isinstance(self.time_features, bool) or self.time_features < 0
                or self.time_features % 2):
            raise ValueError(f"PPOConfig.time_features must be an even int >= 0 (a sin and a cos per frequency); "
                             f"got {self.time_features!r}")
        if isinstance(self.time_horizon, bool) or not (isinstance(self.time_horizon, (int, float))
                                                       and self.time_horizon >= 1):
            raise ValueError(f"PPOConfig.time_horizon must be a number >= 1 (steps); got {self.time_horizon!r}")
        if not isinstance(self.eval_interval, int) or self.eval_interval < 0:
            raise ValueError(f"PPOConfig.eval_interval must be an int >= 0; got {self.eval_interval!r}")
        batch = self.num_envs * self.rollout_steps
        if self.minibatch_size % self.rollout_steps or batch % self.minibatch_size:
            raise ValueError(
                f"PPOConfig.minibatch_size ({self.minibatch_size}) must be a multiple of rollout_steps "
                f"({self.rollout_steps}) that divides the rollout of num_envs * rollout_steps = {batch} env steps "
                f"(minibatches are whole sequences), e.g. {self.rollout_steps * max(1, self.num_envs // 2)}")
        for name in ("gamma", "gae_lambda"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"PPOConfig.{name} must be in [0, 1]; got {getattr(self, name)!r}")
        for name in ("learning_rate", "clip_range", "clip_obs", "clip_reward"):
            if not getattr(self, name) > 0:
                raise ValueError(f"PPOConfig.{name} must be > 0; got {getattr(self, name)!r}")
        for name in ("ent_coef", "vf_coef", "max_grad_norm"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"PPOConfig.{name} must be >= 0; got {getattr(self, name)!r}")
        if self.encoder not in ENCODERS:
            raise ValueError(f"PPOConfig.encoder must be one of {ENCODERS}; got {self.encoder!r}")
        if self.vector not in VECTOR:
            raise ValueError(f"PPOConfig.vector must be one of {VECTOR}; got {self.vector!r}")
        if not isinstance(self.env_kwargs, dict):
            raise ValueError(f"PPOConfig.env_kwargs must be a mapping; got {type(self.env_kwargs).__name__}")

    def replace(self, **overrides) -> "PPOConfig":
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(f"unknown PPOConfig field(s) {unknown}; known: {sorted(known)}")
        return dataclasses.replace(self, **overrides)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "PPOConfig":
        if not isinstance(d, dict):
            raise ValueError(f"PPOConfig must be given as a mapping; got {type(d).__name__}")
        return cls().replace(**d)

    @classmethod
    def from_yaml(cls, path: str | Path) -> "PPOConfig":
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"recipe {str(path)!r} does not exist")
        data = yaml.safe_load(path.read_text()) or {}
        return cls.from_dict(data.get("ppo", data) if isinstance(data, dict) else data)
