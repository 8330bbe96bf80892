"""Checkpoints are plain data read with weights_only=True: a pickled object that would run code is refused, a
damaged file or another model's file is a ValueError naming it, and an agent built on an env callable says so."""
import pickle
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces

from tests.hostile import Payload
from xseq.rl import RecurrentPPO
from xseq.rl.persist import from_plain, to_plain

SMALL = dict(num_envs=2, rollout_steps=16, minibatch_size=16, epochs=1, eval_interval=0, threads=1)
RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "rl" / "masked_cartpole.yaml"


class FiveInputs(gym.Env):
    """5 observed numbers, 2 actions; episodes of 8 steps."""

    observation_space = spaces.Box(-1.0, 1.0, (5,), np.float32)
    action_space = spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self.np_random.uniform(-1, 1, 5).astype(np.float32), {}

    def step(self, action):
        self.t += 1
        return self.np_random.uniform(-1, 1, 5).astype(np.float32), float(action), self.t >= 8, False, {}


def test_a_pickle_that_runs_code_is_refused_and_runs_nothing(tmp_path):
    marker, path = tmp_path / "marker.txt", tmp_path / "hostile.pt"
    torch.save({"format": "xseq.rl/2", "config": Payload(marker)}, path)
    with pytest.raises(ValueError, match=r"refused to load .*hostile\.pt.*could run code"):
        RecurrentPPO.load(path)
    assert not marker.exists()
    # the file is a real payload: an unrestricted torch.load would have run it
    torch.load(path, weights_only=False)
    assert marker.exists()


def test_a_pickle_nested_in_bytes_is_never_opened(tmp_path):
    """xseq.rl/1 kept the envs as a pickle inside the checkpoint; nothing reads such bytes any more."""
    marker, path = tmp_path / "marker.txt", tmp_path / "old.pt"
    torch.save({"format": "xseq.rl/1", "envs": pickle.dumps(Payload(marker))}, path)
    with pytest.raises(ValueError, match=r"old\.pt.* is not an xseq.rl/2 checkpoint .*older xseq"):
        RecurrentPPO.load(path)
    assert not marker.exists()


def test_damaged_and_foreign_files_are_named_value_errors(tmp_path):
    agent = RecurrentPPO("xseq/CueRecall-v0", seed=0, env_kwargs={"delay": 3}, **SMALL).learn(32, progress=False)
    good = tmp_path / "good.pt"
    agent.save(good)
    data = good.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    (tmp_path / "text.pt").write_text("not a checkpoint")
    (tmp_path / "empty.pt").write_bytes(b"")
    for name in ("cut.pt", "text.pt", "empty.pt"):
        with pytest.raises(ValueError, match=rf"{name}.* is not a readable xseq.rl checkpoint"):
            RecurrentPPO.load(tmp_path / name)
    torch.save({"state_dict": {"w": torch.zeros(2)}}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match=r"other\.pt.* is not an xseq.rl/2 checkpoint"):
        RecurrentPPO.load(tmp_path / "other.pt")
    ckpt = torch.load(good, weights_only=True)
    del ckpt["optimizer"]
    torch.save(ckpt, tmp_path / "partial.pt")
    with pytest.raises(ValueError, match=r"partial\.pt.* is not a complete xseq.rl/2 checkpoint"):
        RecurrentPPO.load(tmp_path / "partial.pt")
    with pytest.raises(ValueError, match="no checkpoint at"):
        RecurrentPPO.load(tmp_path / "missing.pt")
    assert RecurrentPPO.load(good).num_timesteps == 32


def test_agent_on_a_callable_env_with_a_recipe_naming_another(tmp_path):
    """The recipe names MaskedCartPole (2 inputs); the agent is built on a 5-input callable. The checkpoint
    must not claim the recipe's env: load() without env= asks for it, with env= it works."""
    agent = RecurrentPPO(FiveInputs, RECIPE, seed=0, **SMALL)
    assert agent.obs_dim == 5 and agent.config.env is None
    agent.learn(32, progress=False)
    path = tmp_path / "five.pt"
    agent.save(path)
    with pytest.raises(ValueError, match=r"env given as a callable \(FiveInputs\): pass env= to load\(\)"):
        RecurrentPPO.load(path)
    again = RecurrentPPO.load(path, env=FiveInputs)
    obs = np.zeros((1, 5), np.float32)
    assert np.array_equal(again.predict(obs, deterministic=True)[0], agent.predict(obs, deterministic=True)[0])
    again.learn(progress=False)  # the restored envs go on
    with pytest.raises(ValueError, match=r"five\.pt.* does not fit the env passed to load\(\)"):
        RecurrentPPO.load(path, env="xseq/MaskedCartPole-v0")


def test_plain_round_trip_keeps_numpy_types():
    rng = np.random.default_rng(3)
    rng.random()
    value = {"a": np.arange(3, dtype=np.float32), "s": np.float32(1.5), "i": np.int64(2), "rng": rng,
             "t": (1, "x", None, [np.zeros(2, bool)]), "f": 0.5}
    back = from_plain(to_plain(value))
    assert back["a"].dtype == np.float32 and np.array_equal(back["a"], value["a"])
    assert type(back["s"]) is np.float32 and type(back["i"]) is np.int64 and back["f"] == 0.5
    assert back["rng"].random() == rng.random()
    assert back["t"][:3] == (1, "x", None) and back["t"][3][0].dtype == bool
