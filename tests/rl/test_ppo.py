"""RecurrentPPO: the training pass recomputes what collection computed, resets, bootstrapping, autoreset,
resume, and bad input."""
import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces

from xseq.nn.config import XLSTMConfig
from xseq.rl import PPOConfig, RecurrentPPO

SMALL = dict(num_envs=4, rollout_steps=16, minibatch_size=32, epochs=2, eval_interval=0, threads=1)
ENCODERS = {
    "xlstm-m": dict(encoder="xlstm", xlstm=XLSTMConfig(d_model=16, layout="m", mlstm={"num_heads": 2})),
    "xlstm-s": dict(encoder="xlstm", xlstm=XLSTMConfig(d_model=16, layout="ms", mlstm={"num_heads": 2},
                                                       slstm={"num_heads": 2})),
    "lstm": dict(encoder="lstm", hidden_size=16),
    "mlp-stack3": dict(encoder="mlp", hidden_size=16, frame_stack=3),
    # the episode clock, alone and with frame stacking: its phase must run on across stored sequences
    "xlstm-s-clock": dict(encoder="xlstm", xlstm=XLSTMConfig(d_model=16, layout="ms", mlstm={"num_heads": 2},
                                                             slstm={"num_heads": 2}), time_features=6,
                          time_horizon=20.0),
    "mlp-stack3-clock": dict(encoder="mlp", hidden_size=16, frame_stack=3, time_features=2, time_horizon=3.0),
}


class Steps(gym.Env):
    """obs = [t, 1]; reward 1 per step; the episode ends after `length` steps, terminated or truncated."""

    def __init__(self, length=3, terminate=True):
        self.length, self.terminate = length, terminate
        self.observation_space = spaces.Box(-10, 10, (2,), np.float32)
        self.action_space = spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.array([0.0, 1.0], np.float32), {}

    def step(self, action):
        self.t += 1
        end = self.t >= self.length
        return (np.array([self.t, 1.0], np.float32), 1.0, end and self.terminate, end and not self.terminate, {})


@pytest.mark.parametrize("name", list(ENCODERS))
def test_training_pass_recomputes_collection(name):
    """First epoch: the parallel pass over stored sequences (episode starts inside them) gives the
    log-probabilities and values that the step-by-step collection computed."""
    agent = RecurrentPPO("xseq/CueRecall-v0", seed=1, env_kwargs={"delay": 4}, **SMALL, **ENCODERS[name])
    agent._start()
    agent.schedule = (0, 10_000)
    agent.collect()  # the second rollout starts mid-episode, from a carried state
    batch, state0 = agent.collect()
    assert batch["episode_start"][:, 1:].any(), "episodes must start inside stored sequences"
    assert not batch["episode_start"][:, 0].all(), "some sequence must start from a carried state"
    with torch.no_grad():
        logp, _, values = agent.policy.evaluate(batch["obs"], batch["actions"], batch["episode_start"], state0)
    torch.testing.assert_close(logp, batch["logp"], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(values, batch["values"], atol=1e-5, rtol=1e-5)


def test_episode_clock_counts_steps_from_each_episode_start():
    """The clock's t is the step index of the next observation in its episode: the env's own t (obs[0] of
    Steps), restarted at 0 by every episode start, in collection and in predict. After an episode's last step
    the state still holds its length (5); the reset comes with the next step's episode_start."""
    agent = RecurrentPPO(lambda: Steps(length=5), **SMALL, normalize_obs=False, encoder="mlp", hidden_size=8,
                         time_features=4)
    agent._start()
    agent.schedule = (0, 10_000)
    for _ in range(5):  # rollouts of 16 steps end at every phase of the 5-step episodes, the last at an end
        agent.collect()
        run = agent._run
        env_t = np.where(run["episode_start"], 5.0, run["obs"][:, 0])
        np.testing.assert_array_equal(run["state"]["t"].numpy(), env_t)
    assert run["episode_start"].all(), "the last rollout must end at an episode end"
    env = Steps(length=5)
    obs, _ = env.reset()
    state, start = None, np.ones(1, bool)
    for _ in range(12):
        action, state = agent.predict(obs[None], state, start)
        obs, _, term, trunc, _ = env.step(int(action[0]))
        start = np.array([term or trunc])
        if term or trunc:
            obs, _ = env.reset()
        assert float(state["t"][0]) == (5.0 if start[0] else obs[0])


def test_clock_features_shift_by_a_fixed_linear_map():
    """The property the clock is for: the features of step t + k are one fixed linear map (a rotation of each
    (sin, cos) pair by k w) of those of step t, for every t; frequencies run from 1 to 1 / horizon."""
    from xseq.rl.policy import clock, clock_frequencies

    freq = clock_frequencies(8, 200.0)
    torch.testing.assert_close(freq[[0, -1]], torch.tensor([1.0, 1 / 200.0], dtype=torch.float64))
    t = torch.arange(0, 300, dtype=torch.float32)
    k = 17
    n = len(freq)
    c, s = torch.cos(k * freq).float(), torch.sin(k * freq).float()
    rot = torch.zeros(2 * n, 2 * n)  # [sin, cos](t + k) = rot @ [sin, cos](t)
    idx = torch.arange(n)
    rot[idx, idx], rot[idx, n + idx] = c, s
    rot[n + idx, idx], rot[n + idx, n + idx] = -s, c
    torch.testing.assert_close(clock(t, freq) @ rot.T, clock(t + k, freq), atol=1e-5, rtol=0)
    assert clock(torch.tensor([3.0]), clock_frequencies(2, 10.0)).shape == (1, 2)


@pytest.mark.parametrize("name", list(ENCODERS))
def test_reset_row_acts_like_a_fresh_agent(name):
    agent = RecurrentPPO("xseq/CueRecall-v0", seed=2, env_kwargs={"delay": 4}, **SMALL, **ENCODERS[name])
    obs = np.random.default_rng(0).uniform(0, 1, (3, 3)).astype(np.float32)
    _, state = agent.predict(obs, None)
    _, state = agent.predict(obs[::-1].copy(), state)
    x = torch.from_numpy(agent.normalizer.obs(obs, update=False))
    start = torch.tensor([True, False, True])
    with torch.no_grad():
        dist, _ = agent.policy.act(x, state, start)
        fresh, _ = agent.policy.act(x, agent.policy.init_state(3, actor_only=True), None)
    p, q = dist.cats[0].probs, fresh.cats[0].probs
    torch.testing.assert_close(p[start], q[start], atol=1e-6, rtol=1e-6)
    assert not torch.allclose(p[1], q[1], atol=1e-6), "a row that was not reset keeps its memory"


@pytest.mark.parametrize("terminate", [True, False])
def test_bootstrap_on_truncation_only(terminate, monkeypatch):
    """A truncated episode's last reward gets gamma * V(final observation), with V from the critic run over
    the whole episode in parallel; a terminated one gets nothing."""
    agent = RecurrentPPO(lambda: Steps(3, terminate), seed=0, num_envs=2, rollout_steps=8, minibatch_size=8,
                         normalize_obs=False, normalize_reward=False, eval_interval=0, gamma=0.9,
                         encoder="xlstm", xlstm=XLSTMConfig(d_model=16, layout="m", mlstm={"num_heads": 2}))
    seen = {}
    monkeypatch.setattr(agent, "_gae", lambda v, lv, r, d: seen.update(r=r.copy(), d=d.copy()) or (v * 0, v * 0))
    agent._start()
    agent.collect()
    r, d = seen["r"], seen["d"]
    assert d[:, 2].all() and d[:, 5].all() and not d[:, [0, 1, 3, 4]].any()
    if terminate:
        assert np.all(r == 1.0)
        return
    episode = torch.tensor([[[0.0, 1.0], [1.0, 1.0], [2.0, 1.0], [3.0, 1.0]]])  # ..., and the final observation
    pol = agent.policy
    with torch.no_grad():
        v_final = pol.value(pol.critic(episode, pol.critic.init_state(1)))[0, -1, 0].item()
    np.testing.assert_allclose(r[:, 2], 1.0 + 0.9 * v_final, rtol=1e-5)
    np.testing.assert_allclose(r[:, [0, 1, 3, 4]], 1.0)


def test_same_step_autoreset_never_steps_on_a_final_observation():
    """Each stored observation after an episode end is the next episode's first (the cue is visible), and
    is flagged as an episode start."""
    agent = RecurrentPPO("xseq/CueRecall-v0", seed=3, env_kwargs={"delay": 3}, normalize_obs=False, **SMALL)
    agent._start()
    batch, _ = agent.collect()
    obs, starts = batch["obs"], batch["episode_start"]
    cue_visible = obs[..., :2].sum(-1) == 1
    assert torch.equal(cue_visible, starts)  # length 4 episodes: the cue shows exactly at episode starts


@pytest.mark.parametrize("name", ["xlstm-m", "xlstm-s-clock"])
def test_resume_is_identical_to_an_uninterrupted_run(tmp_path, name):
    cfg = dict(SMALL, **ENCODERS[name])
    a = RecurrentPPO("xseq/MaskedCartPole-v0", seed=5, **cfg).learn(3 * 64, progress=False)

    class Stop(Exception):
        pass

    def stop_after_first(agent, row):
        raise Stop

    b = RecurrentPPO("xseq/MaskedCartPole-v0", seed=5, **cfg)
    with pytest.raises(Stop):
        b.learn(3 * 64, progress=False, checkpoint=tmp_path / "ckpt.pt", checkpoint_interval=64,
                callback=stop_after_first)
    c = RecurrentPPO.load(tmp_path / "ckpt.pt")
    assert c.num_timesteps == 64
    c.learn(progress=False)
    assert c.num_timesteps == a.num_timesteps == 192
    for (name, pa), pc in zip(a.policy.state_dict().items(), c.policy.state_dict().values()):
        assert torch.equal(pa, pc), name
    assert [r["pg_loss"] for r in a.log] == [r["pg_loss"] for r in c.log]


def test_predict_round_trip_and_batch_one(tmp_path):
    agent = RecurrentPPO("xseq/MaskedCartPole-v0", seed=0, **SMALL, **ENCODERS["xlstm-s"])
    agent.learn(64, progress=False)
    agent.save(tmp_path / "a.pt")
    again = RecurrentPPO.load(tmp_path / "a.pt")
    obs = np.array([[0.01, -0.02]], np.float32)
    s1 = s2 = None
    for _ in range(5):
        a1, s1 = agent.predict(obs, s1, deterministic=True)
        a2, s2 = again.predict(obs, s2, deterministic=True)
        assert a1.shape == (1,) and a1.dtype == np.int64 and np.array_equal(a1, a2)
    for k, v in s1.items(include_nested=True, leaves_only=True):
        torch.testing.assert_close(v, s2[k], atol=0, rtol=0)


class NaNEnv(Steps):
    def step(self, action):
        obs, *rest = super().step(action)
        return np.array([np.nan, 1.0], np.float32), *rest


def test_bad_configuration_fails_fast():
    with pytest.raises(ValueError, match="unsupported action space"):
        RecurrentPPO(lambda: _with_action_space(spaces.MultiBinary(3)), eval_interval=0)
    with pytest.raises(ValueError, match="minibatch_size"):
        PPOConfig(num_envs=4, rollout_steps=16, minibatch_size=48)
    with pytest.raises(ValueError, match="minibatch_size"):
        PPOConfig(num_envs=4, rollout_steps=16, minibatch_size=24)
    with pytest.raises(ValueError, match="time_features must be an even int"):
        PPOConfig(time_features=3)
    with pytest.raises(ValueError, match="time_horizon must be a number >= 1"):
        PPOConfig(time_features=4, time_horizon=0.5)
    with pytest.raises(ValueError, match="unknown PPOConfig field"):
        RecurrentPPO("CartPole-v1", lernin_rate=1e-3)
    with pytest.raises(ValueError, match="unsupported observation space"):
        RecurrentPPO(lambda: _with_obs_space(spaces.Text(5)))
    with pytest.raises(ValueError, match="non-finite observation"):
        RecurrentPPO(lambda: NaNEnv(), **SMALL).learn(64, progress=False)
    agent = RecurrentPPO("xseq/MaskedCartPole-v0", **SMALL, **ENCODERS["xlstm-m"])
    other = RecurrentPPO("xseq/MaskedCartPole-v0", **SMALL, **ENCODERS["lstm"])
    _, state = other.predict(np.zeros((2, 2), np.float32))
    with pytest.raises(ValueError, match="state does not belong to this agent"):
        agent.predict(np.zeros((2, 2), np.float32), state)
    with pytest.raises(ValueError, match="obs contains NaN"):
        agent.predict(np.full((2, 2), np.nan, np.float32))
    with pytest.raises(ValueError, match="episode_start must be bool"):
        agent.predict(np.zeros((2, 2), np.float32), None, episode_start=np.array([1, 0]))


def _with_action_space(space):
    env = Steps()
    env.action_space = space
    return env


def _with_obs_space(space):
    env = Steps()
    env.observation_space = space
    return env


@pytest.mark.parametrize("space", [spaces.MultiDiscrete([3, 2]), spaces.Box(-2.0, 2.0, (2,), np.float32)])
def test_other_action_spaces_learn_and_predict(space):
    class Env(Steps):
        def __init__(self):
            super().__init__(length=5)
            self.action_space = space

    agent = RecurrentPPO(lambda: Env(), **SMALL, **ENCODERS["xlstm-m"]).learn(64, progress=False)
    actions, _ = agent.predict(np.zeros((3, 2), np.float32))
    assert actions.shape == (3, 2) and all(space.contains(a) for a in actions)


def test_dict_observations_are_flattened():
    class Env(Steps):
        def __init__(self):
            super().__init__(length=5)
            self.observation_space = spaces.Dict({"pos": spaces.Box(-10, 10, (2,), np.float32),
                                                  "mode": spaces.Discrete(3)})

        def reset(self, *, seed=None, options=None):
            obs, info = super().reset(seed=seed)
            return {"pos": obs, "mode": 1}, info

        def step(self, action):
            obs, *rest = super().step(action)
            return {"pos": obs, "mode": self.t % 3}, *rest

    agent = RecurrentPPO(lambda: Env(), **SMALL, **ENCODERS["lstm"])
    assert agent.obs_dim == 5
    agent.learn(64, progress=False)


def test_registered_environments():
    cart = gym.make("xseq/MaskedCartPole-v0")
    obs, _ = cart.reset(seed=0)
    full = gym.make("CartPole-v1").reset(seed=0)[0]
    assert obs.shape == (2,) and np.allclose(obs, full[[0, 2]])  # position and angle, no velocities
    pend = gym.make("xseq/MaskedPendulum-v0")
    assert pend.observation_space.shape == (2,) and isinstance(pend.action_space, spaces.Box)
    cue = gym.make("xseq/CueRecall-v0", delay=2)
    obs, _ = cue.reset(seed=1)
    cue_id = int(obs[:2].argmax())
    for _ in range(2):
        obs, r, term, trunc, _ = cue.step(0)
        assert r == 0 and not term and obs[:2].sum() == 0
    assert obs[2] == 1.0  # recall now
    _, r, term, _, _ = cue.step(cue_id)
    assert term and r == 1.0
    with pytest.raises(ValueError, match="delay"):
        gym.make("xseq/CueRecall-v0", delay=0)
