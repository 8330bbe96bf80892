"""Hostile input, generated (Hypothesis), for RecurrentPPO.predict: observations of generated shapes, dtypes and
values (NaN, inf, huge; strings, objects, dicts for a Box space; out-of-range entries for a Discrete part), episode
starts and recurrent states of the wrong kind. Every call works (actions the env takes, one per row) or raises
ValueError/TypeError naming the argument."""
import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

from tests.properties.outcome import examples, works_or_names

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from xseq import XLSTMConfig  # noqa: E402
from xseq.rl import RecurrentPPO  # noqa: E402

NAMES = ["obs", "state", "episode_start"]


class Box5(gym.Env):
    observation_space = spaces.Box(-1.0, 1.0, (5,), np.float32)
    action_space = spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(5, np.float32), {}

    def step(self, action):
        return np.zeros(5, np.float32), 0.0, True, False, {}


class DictObs(gym.Env):
    observation_space = spaces.Dict({"pos": spaces.Box(-1.0, 1.0, (2,), np.float32), "card": spaces.Discrete(3)})
    action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return {"pos": np.zeros(2, np.float32), "card": 0}, {}

    def step(self, action):
        return {"pos": np.zeros(2, np.float32), "card": 0}, 0.0, True, False, {}


_AGENTS = {}


def agent(kind: str) -> RecurrentPPO:
    if kind not in _AGENTS:
        env = {"box": Box5, "dict": DictObs}[kind]
        _AGENTS[kind] = RecurrentPPO(env, seed=0, num_envs=1, minibatch_size=32, threads=1, eval_interval=0,
                                     xlstm=XLSTMConfig(d_model=8, layout="ms", mlstm={"num_heads": 2},
                                                       slstm={"num_heads": 2}))
    return _AGENTS[kind]


def box_obs(n: int, shape: str, dtype: str, poison, rng):
    shapes = {"right": (n, 5), "narrow": (n, 4), "wide": (n, 6), "no_env_dim": (5,), "extra_dim": (n, 5, 1),
              "stacked": (n, 1, 5), "scalar": ()}
    arr = rng.uniform(-1, 1, shapes[shape])
    if poison is not None and arr.size:
        arr.flat[0] = poison
    if dtype == "list":
        return arr.tolist()
    if dtype == "dict":
        return {"pos": arr}
    if dtype == "none":
        return None
    if dtype == "str":
        return arr.astype(str)
    if dtype == "object":
        out = arr.astype(object)
        if out.size:
            out.flat[0] = None
        return out
    if dtype == "complex":
        return arr + 1j
    if dtype == "tuple":
        return (arr,)
    if dtype == "empty":
        return []
    if dtype == "missing_key":
        return {"other": arr}
    return arr.astype(dtype)


def dict_obs(n: int, shape: str, dtype: str, poison, rng):
    pos = rng.uniform(-1, 1, (n, 2) if shape == "right" else (n, 3))
    if poison is not None and pos.size:
        pos.flat[0] = poison
    card = {"right": rng.integers(0, 3, n), "narrow": np.full(n, 7), "wide": np.full(n, -1),
            "no_env_dim": rng.integers(0, 3, n).astype(float) + 0.5}.get(shape, rng.integers(0, 3, n))
    if dtype == "missing_key":
        return {"pos": pos}
    if dtype == "tuple":
        return (pos, card)
    if dtype == "str":
        return {"pos": pos.astype(str), "card": card}
    if dtype == "empty":
        return {}
    return {"pos": pos.astype(dtype if dtype in ("float32", "float64", "int64") else "float64"), "card": card}


ORDINARY = dict(n=[1, 3], shape=["right"], dtype=["float32", "float64", "int64", "list"], poison=[None, 1e30, -1e30],
                state=["none", "returned"], episode_start=["none", "bools", "list"])
HOSTILE = dict(n=[0], shape=["narrow", "wide", "no_env_dim", "extra_dim", "stacked", "scalar"],
               dtype=["bool", "dict", "none", "str", "object", "complex", "missing_key", "tuple", "empty"],
               poison=[float("nan"), float("inf")], state=["other_n", "garbage", "other_agent"],
               episode_start=["ints", "wrong_length", "scalar"])


@st.composite
def cases(draw):
    """One hostile aspect at a time (or none, or all at once), the others ordinary."""
    hostile = draw(st.sampled_from([None, "all", *ORDINARY]))
    return {k: draw(st.sampled_from(HOSTILE[k] if hostile in (k, "all") else ORDINARY[k])) for k in ORDINARY}


@examples(60)
@given(kind=st.sampled_from(["box", "dict"]), case=cases(), deterministic=st.booleans(), seed=st.integers(0, 2**16))
def test_recurrent_ppo_predict_hostile(kind, case, deterministic, seed):
    n, shape, dtype, poison = case["n"], case["shape"], case["dtype"], case["poison"]
    state, episode_start = case["state"], case["episode_start"]
    rng = np.random.default_rng(seed)
    a = agent(kind)
    obs = (box_obs if kind == "box" else dict_obs)(n, shape, dtype, poison, rng)
    good = box_obs(max(n, 1), "right", "float32", None, rng) if kind == "box" else \
        dict_obs(max(n, 1), "right", "float32", None, rng)
    st_ = {"none": None, "garbage": {"actor": 1}}.get(state)
    if state == "returned":
        st_ = a.predict(good)[1]
    elif state == "other_n":
        st_ = a.predict(box_obs(max(n, 1) + 1, "right", "float32", None, rng) if kind == "box" else
                        dict_obs(max(n, 1) + 1, "right", "float32", None, rng))[1]
    elif state == "other_agent":
        other = agent("dict" if kind == "box" else "box")
        st_ = other.policy.init_state(max(n, 1), actor_only=True)
    es = {"none": None, "bools": np.ones(n, bool), "ints": np.ones(n, np.int64), "wrong_length": np.ones(n + 1, bool),
          "list": [True] * n, "scalar": True}[episode_start]
    ok, out = works_or_names(lambda: a.predict(obs, st_, es, deterministic=deterministic), NAMES, "predict")
    if not ok:
        return
    actions, new_state = out
    rows = len(actions)
    if kind == "box":
        assert actions.shape == (rows,) and set(actions.tolist()) <= {0, 1}
    else:
        assert actions.shape == (rows, 2) and np.isfinite(actions).all() and (np.abs(actions) <= 1).all()
    assert new_state.batch_size[0] == rows
    # what predict returned goes back in
    again, _ = a.predict(obs, new_state, None, deterministic=True)
    assert len(again) == rows
