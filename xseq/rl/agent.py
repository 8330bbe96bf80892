"""RecurrentPPO: PPO with a recurrent (xLSTM, LSTM) or feed-forward actor-critic on Gymnasium vector envs.

The agent composes the parts: env setup, the training loop, acting, evaluation and save/load live here;
rollout collection (SAME_STEP autoreset, truncation bootstrap, recurrent state resets at episode starts)
and GAE in xseq.rl.rollout; the clipped-objective update over minibatches of stored sequences in
xseq.rl.ppo. Another on-policy algorithm can reuse RolloutCollector unchanged."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import SyncVectorEnv
from tensordict import TensorDict

from ..common.threads import torch_threads
from . import envs as _envs
from .config import PPOConfig
from .normalize import Normalizer
from .persist import NotPlain, env_snapshot, from_plain, restore_env, safe_load, to_plain
from .policy import ActorCritic
from .ppo import PPOUpdate, annealed
from .rollout import RolloutCollector, gae, make_vec
from .spaces import BatchSpaces, check_obs_space, flatten_batch

_envs.register()

FORMAT = "xseq.rl/2"  # plain data only (read with weights_only=True); /1 held pickled envs and NumPy arrays


def _env_maker(env, cfg: PPOConfig) -> tuple[Callable[[], gym.Env], str]:
    if isinstance(env, str):
        return (lambda: gym.make(env, **cfg.env_kwargs)), env
    if callable(env):
        return env, getattr(env, "__name__", "callable")
    raise ValueError(f"env must be a registered Gymnasium id or a zero-argument callable returning a "
                     f"gymnasium.Env; got {type(env).__name__}")


class RecurrentPPO:
    """agent = RecurrentPPO(env, config=None, *, seed=0, **overrides); agent.learn(total_steps);
    actions, state = agent.predict(obs, state=None, episode_start=None, deterministic=False)."""

    def __init__(self, env=None, config: PPOConfig | str | Path | None = None, *, seed: int = 0, **overrides):
        if config is None:
            cfg = PPOConfig()
        elif isinstance(config, PPOConfig):
            cfg = config
        elif isinstance(config, (str, Path)):
            cfg = PPOConfig.from_yaml(config)
        else:
            raise ValueError(f"config must be a PPOConfig, a recipe path or None; got {type(config).__name__}")
        cfg = cfg.replace(**overrides) if overrides else cfg
        if env is None:
            if cfg.env is None:
                raise ValueError("no environment: pass env= or name one in the config's `env`")
            env = cfg.env
        elif isinstance(env, str):
            cfg = cfg.replace(env=env)
        elif callable(env) and cfg.env is not None:
            cfg = cfg.replace(env=None)  # the config says what the agent is built on: a callable, not cfg.env
        if not isinstance(seed, int):
            raise ValueError(f"seed must be an int; got {seed!r}")
        self.config, self.seed = cfg, seed
        self.env_fn, self.env_name = _env_maker(env, cfg)
        probe = self.env_fn()
        if not isinstance(probe, gym.Env):
            raise ValueError(f"env must create a gymnasium.Env; got {type(probe).__name__}")
        self.observation_space, self.action_space = probe.observation_space, probe.action_space
        probe.close()
        self.obs_dim = check_obs_space(self.observation_space)
        torch.manual_seed(seed)
        self.policy = ActorCritic(self.obs_dim, self.action_space, cfg)  # raises for unsupported action spaces
        self.optimizer = torch.optim.Adam(self.policy.parameters(), lr=cfg.learning_rate, eps=1e-5, foreach=True)
        self.normalizer = Normalizer(self.obs_dim, cfg.num_envs, cfg.gamma, cfg.normalize_obs, cfg.normalize_reward,
                                     cfg.clip_obs, cfg.clip_reward)
        self.generator = torch.Generator().manual_seed(seed)  # action sampling
        self.shuffle = np.random.default_rng(seed)  # minibatch order
        self.collector = RolloutCollector(self.policy, self.normalizer, self.generator, self.observation_space,
                                          cfg.gamma, self.env_name)
        self.ppo = PPOUpdate(self.policy, self.optimizer, cfg, self.shuffle)
        self.batch_spaces = BatchSpaces(self.observation_space)
        self.num_timesteps = 0
        self.schedule = None  # (first, last) env step of the learn() call the annealing refers to
        self.log: list[dict] = []

    # the collector's vector env and carried collection state (obs, episode_start, policy state, episode
    # returns/lengths), under the names they had when collection lived here
    @property
    def _envs(self):
        return self.collector.envs

    @property
    def _run(self) -> dict | None:
        return self.collector.run

    # ---- environments ----------------------------------------------------------------------------------
    def _make_vec(self, n: int, kind: str, fns=None):
        return make_vec(fns or [self.env_fn] * n, kind)

    def _start(self):
        cfg = self.config
        self.collector.start(self._make_vec(cfg.num_envs, cfg.vector), self.seed)

    # ---- collection --------------------------------------------------------------------------------------
    def collect(self) -> tuple[TensorDict, TensorDict]:
        """One rollout of rollout_steps per env: a TensorDict with batch size (num_envs, T), and the policy
        state before its first step (episode starts not yet applied)."""
        roll = self.collector.collect(self.config.rollout_steps)
        adv, ret = self._gae(roll.values.numpy(), roll.last_value.numpy(), roll.rewards, roll.dones)
        self.num_timesteps += roll.num_steps
        return roll.batch(adv, ret), roll.state0

    def _gae(self, values, last_value, rewards, dones):
        return gae(values, last_value, rewards, dones, self.config.gamma, self.config.gae_lambda)

    # ---- update --------------------------------------------------------------------------------------------
    def _progress_left(self) -> float:
        first, last = self.schedule
        return max(0.0, 1.0 - (self.num_timesteps - first) / max(1, last - first))

    def update(self, batch: TensorDict, state0: TensorDict) -> dict:
        """The PPO update on one rollout, with the learning rate and clip range annealed by the schedule."""
        lr, clip = annealed(self.config, self._progress_left())
        return self.ppo(batch, state0, lr, clip)

    # ---- the loop ------------------------------------------------------------------------------------------
    def learn(self, total_steps: int | None = None, *, until: int | None = None, progress: bool = True,
              checkpoint: str | Path | None = None, checkpoint_interval: int = 0,
              callback: Callable[["RecurrentPPO", dict], None] | None = None):
        """Train for total_steps more env steps (summed over envs; rounded up to whole rollouts), the learning
        rate and clip range annealed over them. Or `until`: train until the agent has taken `until` env steps in
        all, over every learn() call and resume (stable-baselines3's reset_num_timesteps=False), the annealing of
        the schedule so far stretched to end there; an agent that is there already does nothing. Without
        either, continue the schedule of the learn() call a loaded checkpoint was saved from. Every
        eval_interval steps a deterministic evaluation; every checkpoint_interval steps (and at the end) a
        checkpoint to `checkpoint`. Returns the agent."""
        cfg = self.config
        if total_steps is not None and until is not None:
            raise ValueError("pass total_steps (steps to add) or until (the total to reach), not both")
        if until is not None:
            if not isinstance(until, int) or isinstance(until, bool) or until < 1:
                raise ValueError(f"until must be a positive int; got {until!r}")
            if self.num_timesteps >= until:
                return self
            self.schedule = (self.num_timesteps if self.schedule is None else self.schedule[0], until)
        elif total_steps is None:
            if self.schedule is None:
                raise ValueError("total_steps is required (no interrupted learn() to continue)")
        else:
            if not isinstance(total_steps, int) or isinstance(total_steps, bool) or total_steps < 1:
                raise ValueError(f"total_steps must be a positive int; got {total_steps!r}")
            self.schedule = (self.num_timesteps, self.num_timesteps + total_steps)
        per_rollout = cfg.num_envs * cfg.rollout_steps
        from tqdm.auto import tqdm
        bar = tqdm(total=self.schedule[1] - self.schedule[0], initial=self.num_timesteps - self.schedule[0],
                   disable=not progress, unit="step", desc=f"PPO {cfg.encoder} {self.env_name}")
        with torch_threads(cfg.threads):
            if not self.collector.started:
                self._start()
            next_eval = self._next_multiple(cfg.eval_interval)
            next_ckpt = self._next_multiple(checkpoint_interval)
            while self.num_timesteps < self.schedule[1]:
                t0 = time.perf_counter()
                batch, state0 = self.collect()
                t1 = time.perf_counter()
                stats = self.update(batch, state0)
                t2 = time.perf_counter()
                recent = self.collector.recent[-100:]
                row = {"step": self.num_timesteps, "threads": torch.get_num_threads(),
                       "steps_per_s": per_rollout / (t2 - t0), "rollout_s": t1 - t0, "update_s": t2 - t1,
                       "train_return": float(np.mean([r for r, _ in recent])) if recent else float("nan"), **stats}
                if next_eval and self.num_timesteps >= next_eval:
                    row["eval_return"], row["eval_std"] = self.evaluate(cfg.eval_episodes)
                    next_eval = self._next_multiple(cfg.eval_interval)
                self.log.append(row)
                bar.update(per_rollout)
                bar.set_postfix(ret=f"{row['train_return']:.1f}", sps=f"{row['steps_per_s']:.0f}")
                if checkpoint is not None and next_ckpt and self.num_timesteps >= next_ckpt:
                    self.save(checkpoint)
                    next_ckpt = self._next_multiple(checkpoint_interval)
                if callback is not None:
                    callback(self, row)
        bar.close()
        if checkpoint is not None:
            self.save(checkpoint)
        return self

    def _next_multiple(self, every: int) -> int:
        return 0 if not every else (self.num_timesteps // every + 1) * every

    # ---- acting ----------------------------------------------------------------------------------------------
    def predict(self, obs, state: TensorDict | None = None, episode_start=None, deterministic: bool = False):
        """obs: raw observations with a leading env dimension. Returns (actions as the env takes them, state)."""
        n = self._batch_size(obs)
        x = self._flat_obs(obs, n)
        if not np.all(np.isfinite(x)):
            raise ValueError("obs contains NaN or inf")
        x = torch.from_numpy(self.normalizer.obs(x, update=False))
        if state is None:
            state = self.policy.init_state(n, actor_only=True)
        elif state is not self.__dict__.get("_returned") or state.batch_size[0] != n:  # what predict returned last
            self._check_state(state, n)
        if episode_start is not None:
            episode_start = torch.as_tensor(np.asarray(episode_start))
            if episode_start.dtype != torch.bool or tuple(episode_start.shape) != (n,):
                raise ValueError(f"episode_start must be bool with shape ({n},); got {episode_start.dtype} "
                                 f"{tuple(episode_start.shape)}")
        with torch.no_grad(), torch_threads(self.config.threads):
            dist, state = self.policy.act(x, state, episode_start)
            action = dist.mode() if deterministic else dist.sample(self.generator)
        self._returned = state
        return self.policy.head.to_env(action), state

    def _batch_size(self, obs) -> int:
        first = obs
        while isinstance(first, (dict, tuple)):
            if not first:
                raise ValueError(f"obs is an empty {type(first).__name__}; the observation space is "
                                 f"{self.observation_space}")
            first = next(iter(first.values())) if isinstance(first, dict) else first[0]
        try:
            arr = np.asarray(first)
        except (TypeError, ValueError) as e:
            raise ValueError(f"obs is not an array of observations ({e})") from None
        if arr.ndim == 0:
            raise ValueError("obs must have a leading env dimension (one row per env)")
        if arr.shape[0] == 0:
            raise ValueError("obs has no rows: it needs one observation per env")
        return arr.shape[0]

    def _flat_obs(self, obs, n: int) -> np.ndarray:
        """obs (n rows) flattened to (n, obs_dim) float32; a ValueError naming obs where it does not fit the
        observation space (another shape, non-numbers, a Discrete part outside its range, a missing key)."""
        space = self.observation_space
        problem = _obs_problem(space, obs)
        if problem is None:
            try:
                x = flatten_batch(space, self.batch_spaces(n), obs)
            except (ValueError, TypeError, IndexError, KeyError, AttributeError, AssertionError) as e:
                problem = f"{type(e).__name__}: {str(e).strip()[:200]}"
            else:
                if x.shape == (n, self.obs_dim):
                    return x
                problem = f"{x.shape[1]} values per row, the space has {self.obs_dim}"
        raise ValueError(f"obs does not fit the observation space {space} with {n} env row(s): {problem}")

    def _check_state(self, state, n: int) -> None:
        if not isinstance(state, TensorDict):
            raise ValueError(f"state must be the TensorDict predict() returned; got {type(state).__name__}")
        cache = self.__dict__.setdefault("_state_shapes", {})
        if n not in cache:
            want = self.policy.init_state(n, actor_only=True)
            cache[n] = {k: tuple(v.shape) for k, v in want.items(include_nested=True, leaves_only=True)}
        shapes = cache[n]
        got = {k: tuple(v.shape) for k, v in state.items(include_nested=True, leaves_only=True)}
        if shapes != got:
            raise ValueError(f"state does not belong to this agent (or to {n} envs): expected entries {shapes}, "
                             f"got {got}")

    def evaluate(self, episodes: int | None = None, deterministic: bool = True, seed: int | None = None):
        """Mean and std of the undiscounted return over `episodes` full episodes, with frozen normalisation."""
        episodes = episodes or self.config.eval_episodes
        n = min(episodes, self.config.num_envs)
        vec = self._make_vec(n, "sync")
        obs, _ = vec.reset(seed=(self.seed + 10_000) if seed is None else seed)
        state, start = None, np.ones(n, bool)
        targets = np.array([(episodes + i) // n for i in range(n)])  # per env, so short episodes are not favoured
        counts, ep, returns = np.zeros(n, np.int64), np.zeros(n), []
        while (counts < targets).any():
            action, state = self.predict(obs, state, start, deterministic=deterministic)
            obs, r, term, trunc, _ = vec.step(action)
            ep += r
            start = np.logical_or(term, trunc)
            for i in np.flatnonzero(start & (counts < targets)):
                returns.append(float(ep[i]))
                counts[i] += 1
            ep[start] = 0.0
        vec.close()
        return float(np.mean(returns)), float(np.std(returns))

    # ---- persistence -------------------------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Everything needed to act, and to continue learning exactly, as plain data (tensors, numbers, strings:
        load() reads it with torch.load(weights_only=True)). Sync vector envs are saved as their members'
        values and put back into freshly built envs on load; envs holding state that is not plain data, and
        async ones, are recreated and reset on resume."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        envs = None
        if isinstance(self.collector.envs, SyncVectorEnv):
            envs = [env_snapshot(e) for e in self.collector.envs.envs]
            envs = None if any(e is None for e in envs) else envs
        run = self.collector.run
        try:
            ckpt = to_plain({
                "format": FORMAT, "config": self.config.to_dict(), "seed": self.seed, "env_name": self.env_name,
                "env": self.config.env,  # None: built from a callable, which load() must be given again
                "policy": dict(self.policy.state_dict()), "optimizer": self.optimizer.state_dict(),
                "normalizer": self.normalizer.state_dict(), "generator": self.generator.get_state(),
                "shuffle": self.shuffle.bit_generator.state, "num_timesteps": self.num_timesteps,
                "schedule": self.schedule, "log": self.log, "envs": envs,
                "run": None if run is None else {**run, "state": run["state"].to_dict()}})
        except NotPlain as e:
            raise ValueError(f"cannot save the agent as plain data: it holds {e} (in its config's env_kwargs?)"
                             ) from None
        tmp = path.with_suffix(path.suffix + ".tmp")
        torch.save(ckpt, tmp)
        tmp.replace(path)

    @classmethod
    def load(cls, path: str | Path, env=None) -> "RecurrentPPO":
        """Rebuild an agent from save(); `env` is needed only for an agent built on an env given as a callable.
        Reads plain data only: a file holding pickled objects (which could run code) is refused with a
        ValueError, and so are truncated or corrupted files and checkpoints of something else."""
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"no checkpoint at {str(path)!r}")
        ckpt = safe_load(path, "xseq.rl")
        if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
            fmt = ckpt.get("format") if isinstance(ckpt, dict) else None
            older = f" (format {fmt!r}, from an older xseq: retrain it)" if fmt == "xseq.rl/1" else \
                f" (format {fmt!r})" if fmt else ""
            raise ValueError(f"{str(path)!r} is not an {FORMAT} checkpoint{older}")
        try:
            ckpt = from_plain(ckpt)
            cfg = PPOConfig.from_dict(ckpt["config"])
            if env is None:
                env = ckpt["env"]
                if env is None:
                    raise ValueError(f"{str(path)!r} holds an agent trained on an env given as a callable "
                                     f"({ckpt['env_name']}): pass env= to load()")
            agent = cls(env, cfg, seed=ckpt["seed"])
            try:
                agent.policy.load_state_dict(ckpt["policy"])
            except RuntimeError as e:
                where = "the env passed to load()" if env is not ckpt["env"] else "the env it names"
                raise ValueError(f"{str(path)!r} does not fit {where}: its policy's weights have other shapes "
                                 f"({str(e).splitlines()[-1].strip()[:200]})") from None
            agent.optimizer.load_state_dict(ckpt["optimizer"])
            agent.normalizer.load_state_dict(ckpt["normalizer"])
            agent.generator.set_state(ckpt["generator"])
            agent.shuffle.bit_generator.state = ckpt["shuffle"]
            agent.num_timesteps, agent.log = ckpt["num_timesteps"], ckpt["log"]
            agent.schedule = None if ckpt["schedule"] is None else tuple(ckpt["schedule"])
            if ckpt["run"] is not None and ckpt["envs"] is not None:
                run = dict(ckpt["run"])
                run["state"] = TensorDict.from_dict(run["state"], batch_size=[agent.config.num_envs])
                envs = agent._restore_envs(ckpt["envs"])
                if envs is not None:
                    agent.collector.restore(agent._make_vec(len(envs), "sync", fns=[(lambda e=e: e) for e in envs]),
                                            run)
            # otherwise learn() starts the envs afresh (results then differ from an uninterrupted run)
        except (KeyError, TypeError, AttributeError) as e:
            raise ValueError(f"{str(path)!r} is not a complete {FORMAT} checkpoint ({type(e).__name__}: {e})") from None
        return agent

    def _restore_envs(self, snapshots: list) -> list | None:
        envs = []
        for snap in snapshots:
            env = self.env_fn()
            envs.append(env)
            if not restore_env(env, snap):  # another make of env than the saved one: start afresh
                for e in envs:
                    e.close()
                return None
        return envs

    def close(self) -> None:
        self.collector.close()


def _obs_problem(space, obs) -> str | None:
    """What is wrong with a batch of observations that flattening would not notice: a Discrete / MultiDiscrete part
    outside its range (one-hot flattening wraps a negative value around), a Box part of complex numbers or
    strings (the cast to float32 drops the imaginary part, parses the strings); None if nothing."""
    if isinstance(space, gym.spaces.Box):
        try:
            kind = np.asarray(obs).dtype.kind
        except (TypeError, ValueError) as e:
            return str(e)[:200]
        return None if kind in "biuf" else f"a Box part holds {np.asarray(obs).dtype} values, not real numbers"
    if isinstance(space, (gym.spaces.Discrete, gym.spaces.MultiDiscrete)):
        try:
            a = np.asarray(obs)
            if a.dtype.kind not in "iu":
                return f"a {type(space).__name__} part holds {a.dtype} values, not ints"
        except (TypeError, ValueError) as e:
            return str(e)[:200]
        lo = space.start
        hi = lo + (space.n if isinstance(space, gym.spaces.Discrete) else space.nvec)
        if a.size and ((a < lo) | (a >= hi)).any():
            return f"a {type(space).__name__} part holds values outside [{lo}, {hi})"
    elif isinstance(space, gym.spaces.Dict):
        if not isinstance(obs, dict) or set(obs) != set(space.spaces):
            return f"expected a dict with the keys {sorted(space.spaces)}"
        return next(filter(None, (_obs_problem(s, obs[k]) for k, s in space.spaces.items())), None)
    elif isinstance(space, gym.spaces.Tuple):
        if not isinstance(obs, tuple) or len(obs) != len(space.spaces):
            return f"expected a tuple of {len(space.spaces)} parts"
        return next(filter(None, (_obs_problem(s, o) for s, o in zip(space.spaces, obs))), None)
    return None
