"""Running statistics for observation and reward normalisation (float64, parallel-merge updates)."""
from __future__ import annotations

import numpy as np


class RunningMeanStd:
    def __init__(self, shape=(), eps: float = 1e-4):
        self.mean = np.zeros(shape, np.float64)
        self.var = np.ones(shape, np.float64)
        self.count = eps

    def update(self, x: np.ndarray) -> None:
        """x: (n, *shape), merged with Chan et al.'s parallel formula."""
        b_mean, b_var, n = x.mean(0), x.var(0), x.shape[0]
        delta, total = b_mean - self.mean, self.count + n
        m2 = self.var * self.count + b_var * n + delta**2 * self.count * n / total
        self.mean, self.var, self.count = self.mean + delta * n / total, m2 / total, total

    def state_dict(self) -> dict:
        return {"mean": self.mean.copy(), "var": self.var.copy(), "count": self.count}

    def load_state_dict(self, d: dict) -> None:
        self.mean, self.var, self.count = np.array(d["mean"]), np.array(d["var"]), float(d["count"])


class Normalizer:
    """Observations: (x - mean) / std, clipped. Rewards: divided by the std of the discounted return, as
    accumulated per env (reset at episode ends), clipped. Both optional; statistics update only in training."""

    def __init__(self, obs_dim: int, num_envs: int, gamma: float, obs: bool, reward: bool, clip_obs: float,
                 clip_reward: float, eps: float = 1e-8):
        self.use_obs, self.use_reward = obs, reward
        self.obs_rms, self.ret_rms = RunningMeanStd((obs_dim,)), RunningMeanStd(())
        self.returns = np.zeros(num_envs, np.float64)
        self.gamma, self.clip_obs, self.clip_reward, self.eps = gamma, clip_obs, clip_reward, eps

    def obs(self, x: np.ndarray, update: bool) -> np.ndarray:
        if not self.use_obs:
            return x.astype(np.float32)
        if update:
            self.obs_rms.update(x)
        z = (x - self.obs_rms.mean) / np.sqrt(self.obs_rms.var + self.eps)
        return np.minimum(np.maximum(z, -self.clip_obs), self.clip_obs).astype(np.float32)  # np.clip, cheaper

    def reward(self, r: np.ndarray, done: np.ndarray) -> np.ndarray:
        """Training rewards (updates the return statistics)."""
        if not self.use_reward:
            return r.astype(np.float32)
        self.returns = self.returns * self.gamma + r
        self.ret_rms.update(self.returns)
        self.returns[done] = 0.0
        return np.clip(r / np.sqrt(self.ret_rms.var + self.eps), -self.clip_reward, self.clip_reward).astype(np.float32)

    def state_dict(self) -> dict:
        return {"obs_rms": self.obs_rms.state_dict(), "ret_rms": self.ret_rms.state_dict(),
                "returns": self.returns.copy()}

    def load_state_dict(self, d: dict) -> None:
        self.obs_rms.load_state_dict(d["obs_rms"])
        self.ret_rms.load_state_dict(d["ret_rms"])
        self.returns = np.array(d["returns"])
