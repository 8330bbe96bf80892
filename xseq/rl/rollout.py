"""Rollout collection for on-policy algorithms, and generalised advantage estimation.

RolloutCollector steps every env of a Gymnasium vector env once per rollout step with the policy's `step`
face and stores what an update needs (RolloutBuffer). Vector envs use SAME_STEP autoreset: when an episode
ends, the step returns the next episode's first observation and the final one in info["final_obs"], from
which a truncated episode is bootstrapped (a terminated one is not). The env rows that start an episode are
flagged in `episode_start`, which the policy uses to reset those rows' recurrent state on its next step.
Nothing here knows about the update that consumes the rollout; `gae` turns one into advantages and returns."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AsyncVectorEnv, AutoresetMode, SyncVectorEnv
from tensordict import TensorDict

from .normalize import Normalizer
from .spaces import BatchSpaces, flatten_batch


def make_vec(env_fns: Sequence[Callable[[], gym.Env]], kind: str = "sync"):
    """A vector env ("sync": in this process, "async": subprocesses) with SAME_STEP autoreset."""
    cls = SyncVectorEnv if kind == "sync" else AsyncVectorEnv
    return cls(list(env_fns), autoreset_mode=AutoresetMode.SAME_STEP)


def gae(values: np.ndarray, last_value: np.ndarray, rewards: np.ndarray, dones: np.ndarray, gamma: float,
        gae_lambda: float) -> tuple[np.ndarray, np.ndarray]:
    """Generalised advantage estimation over (N, T) arrays: the advantages and the returns (advantages +
    values). last_value: V of the observation after the last step; a done step does not bootstrap."""
    N, T = values.shape
    adv = np.zeros((N, T), np.float32)
    next_adv, next_value = np.zeros(N, np.float32), last_value
    for t in range(T - 1, -1, -1):
        live = 1.0 - dones[:, t]
        delta = rewards[:, t] + gamma * next_value * live - values[:, t]
        next_adv = delta + gamma * gae_lambda * live * next_adv
        adv[:, t], next_value = next_adv, values[:, t]
    return adv, adv + values


@dataclass
class RolloutBuffer:
    """One rollout of T steps from N envs, env-major. rewards are normalised, with the bootstrap of truncated
    episodes added; dones[:, t] ends an episode at step t, episode_start[:, t] begins one there (the policy
    state is reset before step t). state0 is the policy state before step 0 (episode starts not yet applied),
    last_value V of the observation after the last step."""
    obs: np.ndarray  # (N, T, obs_dim) float32, normalised
    actions: torch.Tensor  # (N, T, action_dim)
    logp: torch.Tensor  # (N, T)
    values: torch.Tensor  # (N, T)
    rewards: np.ndarray  # (N, T) float32
    dones: np.ndarray  # (N, T) bool
    episode_start: np.ndarray  # (N, T) bool
    last_value: torch.Tensor  # (N,)
    state0: TensorDict  # batch size (N,)

    @property
    def num_steps(self) -> int:
        """Env steps in the rollout, summed over envs."""
        return self.rewards.size

    def batch(self, advantages: np.ndarray, returns: np.ndarray) -> TensorDict:
        """What a sequence update consumes: a TensorDict with batch size (N, T)."""
        return TensorDict({"obs": torch.from_numpy(self.obs), "actions": self.actions, "logp": self.logp,
                           "values": self.values, "episode_start": torch.from_numpy(self.episode_start),
                           "advantages": torch.from_numpy(advantages), "returns": torch.from_numpy(returns)},
                          batch_size=list(self.rewards.shape))


class RolloutCollector:
    """Runs a policy (with `step(obs, state, episode_start) -> (dist, value, state)`, `value_after`,
    `init_state` and `head.action_dim` / `head.to_env`) in vector envs. Between rollouts it carries `run`:
    the normalised observation, episode_start, the policy state and the running episode returns and lengths;
    finished episodes are appended to run["recent"] as (return, length)."""

    def __init__(self, policy, normalizer: Normalizer, generator: torch.Generator, observation_space,
                 gamma: float, env_name: str = "env"):
        self.policy, self.normalizer, self.generator = policy, normalizer, generator
        self.observation_space, self.gamma, self.env_name = observation_space, gamma, env_name
        self.batch_spaces = BatchSpaces(observation_space)
        self.envs = None
        self.run: dict | None = None

    @property
    def started(self) -> bool:
        return self.envs is not None

    def start(self, envs, seed: int) -> None:
        """Reset `envs` with `seed`; every env begins an episode (and a fresh policy state)."""
        n = envs.num_envs
        self.envs = envs
        obs, _ = envs.reset(seed=seed)
        self.run = {"obs": self.normalizer.obs(self.flat(obs, envs), update=True),
                    "episode_start": np.ones(n, bool), "state": self.policy.init_state(n),
                    "ep_return": np.zeros(n), "ep_length": np.zeros(n, np.int64), "recent": []}

    def restore(self, envs, run: dict) -> None:
        """Continue from saved envs and the `run` they belong to."""
        self.envs, self.run = envs, run

    @property
    def recent(self) -> list[tuple[float, int]]:
        """(return, length) of every finished episode, oldest first."""
        return self.run["recent"] if self.run is not None else []

    @torch.no_grad()
    def collect(self, steps: int) -> RolloutBuffer:
        """`steps` steps of every env from where the last rollout stopped."""
        run, pol = self.run, self.policy
        N, T = self.envs.num_envs, steps
        state0 = run["state"].clone()
        obs = np.empty((N, T, run["obs"].shape[1]), np.float32)
        acts = torch.empty(N, T, pol.head.action_dim)
        logp, values = torch.empty(N, T), torch.empty(N, T)
        rewards, dones = np.empty((N, T), np.float32), np.empty((N, T), bool)
        starts = np.empty((N, T), bool)
        for t in range(T):
            obs[:, t], starts[:, t] = run["obs"], run["episode_start"]
            dist, value, run["state"] = pol.step(torch.from_numpy(run["obs"]), run["state"],
                                                 torch.from_numpy(run["episode_start"]))
            action = dist.sample(self.generator)
            acts[:, t], logp[:, t], values[:, t] = action, dist.log_prob(action), value
            raw, r, term, trunc, info = self.envs.step(pol.head.to_env(action))
            done = np.logical_or(term, trunc)
            run["ep_return"] += r
            run["ep_length"] += 1
            for i in np.flatnonzero(done):
                run["recent"].append((float(run["ep_return"][i]), int(run["ep_length"][i])))
            run["ep_return"][done], run["ep_length"][done] = 0.0, 0
            r_norm = self.normalizer.reward(np.asarray(r, np.float64), done)
            if trunc.any():  # bootstrap from the final observation; never on termination
                rows = np.flatnonzero(np.logical_and(trunc, ~np.asarray(term)))
                if len(rows):
                    final = self.final_obs(info, rows)
                    v = pol.value_after(torch.from_numpy(final), run["state"][torch.from_numpy(rows)])
                    r_norm[rows] += self.gamma * v.numpy()
            rewards[:, t], dones[:, t] = r_norm, done
            run["obs"] = self.normalizer.obs(self.flat(raw, self.envs), update=True)
            run["episode_start"] = done
        _, last_value, _ = pol.step(torch.from_numpy(run["obs"]), run["state"], torch.from_numpy(run["episode_start"]))
        return RolloutBuffer(obs, acts, logp, values, rewards, dones, starts, last_value, state0)

    # ---- observations ------------------------------------------------------------------------------------
    def flat(self, obs, vec) -> np.ndarray:
        """A vector env's observations as float32 rows; non-finite values raise."""
        x = flatten_batch(self.observation_space, vec.observation_space, obs)
        if not np.all(np.isfinite(x)):
            bad = np.argwhere(~np.isfinite(x))[0]
            raise ValueError(f"the environment {self.env_name!r} returned a non-finite observation (env {bad[0]}, "
                             f"entry {bad[1]}: {x[tuple(bad)]}); NaN/inf observations are not used for training")
        return x

    def final_obs(self, info, rows) -> np.ndarray:
        """The normalised final observations (info["final_obs"]) of the env rows `rows`."""
        finals = [info["final_obs"][i] for i in rows]
        if isinstance(self.observation_space, gym.spaces.Box):
            picked = np.stack(finals)
        else:
            single = self.envs.single_observation_space
            empty = gym.vector.utils.create_empty_array(single, len(rows))
            picked = gym.vector.utils.concatenate(single, finals, empty)
        x = flatten_batch(self.observation_space, self.batch_spaces(len(rows)), picked)
        if not np.all(np.isfinite(x)):
            raise ValueError(f"the environment {self.env_name!r} returned a non-finite final observation")
        return self.normalizer.obs(x, update=False)

    def close(self) -> None:
        if self.envs is not None:
            self.envs.close()
            self.envs = None
