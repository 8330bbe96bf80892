"""The project's Gymnasium environments, registered when xseq.rl is imported.

- xseq/MaskedCartPole-v0: CartPole-v1 observing only cart position and pole angle (velocities removed).
- xseq/MaskedPendulum-v0: Pendulum-v1 observing only cos and sin of the angle (angular velocity removed).
- xseq/CueRecall-v0: a cue (one of `num_cues`) is shown on the first step only, then `delay` steps of a
  blank observation; on the last step the agent must name the cue. Reward 1 for the right cue, 0 otherwise,
  so a memoryless policy scores 1 / num_cues on average.
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces


class MaskVelocity(gym.ObservationWrapper):
    """Keeps the observation entries at `keep` (a list of indices) and drops the rest."""

    def __init__(self, env: gym.Env, keep: list[int]):
        super().__init__(env)
        box = env.observation_space
        if not isinstance(box, spaces.Box) or box.shape is None or len(box.shape) != 1:
            raise ValueError(f"MaskVelocity needs a 1-d Box observation space; got {box}")
        self.keep = np.asarray(keep, dtype=np.int64)
        self.observation_space = spaces.Box(box.low[self.keep], box.high[self.keep], dtype=box.dtype)

    def observation(self, observation):
        return observation[self.keep]


def masked_cartpole(**kwargs) -> gym.Env:
    return MaskVelocity(gym.make("CartPole-v1", **kwargs), keep=[0, 2])


def masked_pendulum(**kwargs) -> gym.Env:
    return MaskVelocity(gym.make("Pendulum-v1", **kwargs), keep=[0, 1])


class CueRecall(gym.Env):
    """Observation: one-hot cue (num_cues) plus a 'recall now' flag, all zero in between. The cue is
    visible at t = 0 only; the flag is set at t = delay; the action taken then ends the episode. Actions
    taken before the flag do nothing."""

    metadata = {"render_modes": []}

    def __init__(self, delay: int = 50, num_cues: int = 2):
        if not isinstance(delay, int) or delay < 1:
            raise ValueError(f"delay must be a positive int; got {delay!r}")
        if not isinstance(num_cues, int) or num_cues < 2:
            raise ValueError(f"num_cues must be an int >= 2; got {num_cues!r}")
        self.delay, self.num_cues = delay, num_cues
        self.observation_space = spaces.Box(0.0, 1.0, (num_cues + 1,), dtype=np.float32)
        self.action_space = spaces.Discrete(num_cues)
        self._t, self._cue = 0, 0

    def _obs(self) -> np.ndarray:
        obs = np.zeros(self.num_cues + 1, dtype=np.float32)
        if self._t == 0:
            obs[self._cue] = 1.0
        if self._t == self.delay:
            obs[-1] = 1.0
        return obs

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._t, self._cue = 0, int(self.np_random.integers(self.num_cues))
        return self._obs(), {}

    def step(self, action):
        if not self.action_space.contains(action):
            raise ValueError(f"action must be in {self.action_space}; got {action!r}")
        if self._t == self.delay:
            correct = int(action) == self._cue
            return self._obs(), float(correct), True, False, {"correct": correct}
        self._t += 1
        return self._obs(), 0.0, False, False, {}


def register() -> None:
    for env_id, entry, kwargs, steps in (("xseq/MaskedCartPole-v0", masked_cartpole, {}, None),
                                         ("xseq/MaskedPendulum-v0", masked_pendulum, {}, None),
                                         ("xseq/CueRecall-v0", CueRecall, {"delay": 50}, None)):
        if env_id not in gym.registry:
            gym.register(env_id, entry_point=entry, kwargs=kwargs, max_episode_steps=steps)
