"""RecurrentPPO: PPO with a recurrent (xLSTM, LSTM) or feed-forward actor-critic on Gymnasium vector envs.

Collection steps every env once per rollout step with the policy's `step` face; the update runs each stored
sequence through the policy's parallel `evaluate` face (episode starts inside a sequence honoured, no loop
over time). Vector envs use SAME_STEP autoreset: when an episode ends, the step returns the next episode's
first observation and the final one in info["final_obs"], from which a truncated episode is bootstrapped
(a terminated one is not)."""
from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Callable

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AsyncVectorEnv, AutoresetMode, SyncVectorEnv
from tensordict import TensorDict

from .._threads import torch_threads
from . import envs as _envs
from .config import PPOConfig
from .normalize import Normalizer
from .policy import ActorCritic
from .spaces import check_obs_space, flatten_batch

_envs.register()


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
        self.generator = torch.Generator().manual_seed(seed)
        self.shuffle = np.random.default_rng(seed)
        self.num_timesteps = 0
        self.schedule = None  # (first, last) env step of the learn() call the annealing refers to
        self.log: list[dict] = []
        self._envs = None
        self._run = None  # collection state: obs, episode_start, policy state, episode returns/lengths

    # ---- environments ----------------------------------------------------------------------------------
    def _make_vec(self, n: int, kind: str, fns=None):
        fns = fns or [self.env_fn] * n
        cls = SyncVectorEnv if kind == "sync" else AsyncVectorEnv
        return cls(fns, autoreset_mode=AutoresetMode.SAME_STEP)

    def _flat(self, obs, vec) -> np.ndarray:
        x = flatten_batch(self.observation_space, vec.observation_space, obs)
        if not np.all(np.isfinite(x)):
            bad = np.argwhere(~np.isfinite(x))[0]
            raise ValueError(f"the environment {self.env_name!r} returned a non-finite observation (env {bad[0]}, "
                             f"entry {bad[1]}: {x[tuple(bad)]}); NaN/inf observations are not used for training")
        return x

    def _start(self):
        cfg = self.config
        self._envs = self._make_vec(cfg.num_envs, cfg.vector)
        obs, _ = self._envs.reset(seed=self.seed)
        self._run = {"obs": self.normalizer.obs(self._flat(obs, self._envs), update=True),
                     "episode_start": np.ones(cfg.num_envs, bool),
                     "state": self.policy.init_state(cfg.num_envs),
                     "ep_return": np.zeros(cfg.num_envs), "ep_length": np.zeros(cfg.num_envs, np.int64),
                     "recent": []}

    # ---- collection --------------------------------------------------------------------------------------
    @torch.no_grad()
    def collect(self) -> tuple[TensorDict, TensorDict]:
        """One rollout of rollout_steps per env: a TensorDict with batch size (num_envs, T), and the policy
        state before its first step (episode starts not yet applied)."""
        cfg, run, pol = self.config, self._run, self.policy
        N, T = cfg.num_envs, cfg.rollout_steps
        state0 = run["state"].clone()
        obs = np.empty((N, T, self.obs_dim), np.float32)
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
            raw, r, term, trunc, info = self._envs.step(pol.head.to_env(action))
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
                    final = self._final_obs(info, rows)
                    v = pol.value_after(torch.from_numpy(final), run["state"][torch.from_numpy(rows)])
                    r_norm[rows] += cfg.gamma * v.numpy()
            rewards[:, t], dones[:, t] = r_norm, done
            run["obs"] = self.normalizer.obs(self._flat(raw, self._envs), update=True)
            run["episode_start"] = done
        _, last_value, _ = pol.step(torch.from_numpy(run["obs"]), run["state"], torch.from_numpy(run["episode_start"]))
        adv, ret = self._gae(values.numpy(), last_value.numpy(), rewards, dones)
        self.num_timesteps += N * T
        return TensorDict({"obs": torch.from_numpy(obs), "actions": acts, "logp": logp, "values": values,
                           "episode_start": torch.from_numpy(starts), "advantages": torch.from_numpy(adv),
                           "returns": torch.from_numpy(ret)}, batch_size=[N, T]), state0

    def _final_obs(self, info, rows) -> np.ndarray:
        finals = [info["final_obs"][i] for i in rows]
        if isinstance(self.observation_space, gym.spaces.Box):
            picked = np.stack(finals)
        else:
            single = self._envs.single_observation_space
            empty = gym.vector.utils.create_empty_array(single, len(rows))
            picked = gym.vector.utils.concatenate(single, finals, empty)
        x = flatten_batch(self.observation_space, self._batch_space(len(rows)), picked)
        if not np.all(np.isfinite(x)):
            raise ValueError(f"the environment {self.env_name!r} returned a non-finite final observation")
        return self.normalizer.obs(x, update=False)

    def _gae(self, values, last_value, rewards, dones):
        cfg = self.config
        N, T = values.shape
        adv = np.zeros((N, T), np.float32)
        next_adv, next_value = np.zeros(N, np.float32), last_value
        for t in range(T - 1, -1, -1):
            live = 1.0 - dones[:, t]
            delta = rewards[:, t] + cfg.gamma * next_value * live - values[:, t]
            next_adv = delta + cfg.gamma * cfg.gae_lambda * live * next_adv
            adv[:, t], next_value = next_adv, values[:, t]
        return adv, adv + values

    # ---- update --------------------------------------------------------------------------------------------
    def _progress_left(self) -> float:
        first, last = self.schedule
        return max(0.0, 1.0 - (self.num_timesteps - first) / max(1, last - first))

    def update(self, batch: TensorDict, state0: TensorDict) -> dict:
        cfg, pol = self.config, self.policy
        left = self._progress_left()
        lr = cfg.learning_rate * (left if cfg.anneal_lr else 1.0)
        clip = cfg.clip_range * (left if cfg.anneal_clip else 1.0)
        for g in self.optimizer.param_groups:
            g["lr"] = lr
        N = batch.batch_size[0]
        per = cfg.minibatch_size // cfg.rollout_steps
        stats = {"pg_loss": 0.0, "v_loss": 0.0, "entropy": 0.0, "clip_frac": 0.0, "approx_kl": 0.0}
        n = 0
        for _ in range(cfg.epochs):
            order = torch.from_numpy(self.shuffle.permutation(N))
            for i in range(0, N, per):
                rows = order[i:i + per]
                mb = batch[rows]
                logp, ent, v = pol.evaluate(mb["obs"], mb["actions"], mb["episode_start"], state0[rows])
                adv = mb["advantages"]
                adv = (adv - adv.mean()) / (adv.std() + 1e-8)
                ratio = (logp - mb["logp"]).exp()
                pg = -torch.min(ratio * adv, ratio.clamp(1 - clip, 1 + clip) * adv).mean()
                v_loss = 0.5 * (mb["returns"] - v).pow(2).mean()
                loss = pg + cfg.vf_coef * v_loss - cfg.ent_coef * ent.mean()
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(pol.parameters(), cfg.max_grad_norm)
                self.optimizer.step()
                with torch.no_grad():
                    stats["pg_loss"] += pg.item()
                    stats["v_loss"] += v_loss.item()
                    stats["entropy"] += ent.mean().item()
                    stats["clip_frac"] += ((ratio - 1).abs() > clip).float().mean().item()
                    stats["approx_kl"] += ((ratio - 1) - (logp - mb["logp"])).mean().item()
                n += 1
        return {k: v / n for k, v in stats.items()} | {"lr": lr, "clip_range": clip}

    # ---- the loop ------------------------------------------------------------------------------------------
    def learn(self, total_steps: int | None = None, *, progress: bool = True, checkpoint: str | Path | None = None,
              checkpoint_interval: int = 0, callback: Callable[["RecurrentPPO", dict], None] | None = None):
        """Train for total_steps env steps (summed over envs; rounded up to whole rollouts). Without
        total_steps, continue the schedule of the learn() call a loaded checkpoint was saved from. Every
        eval_interval steps a deterministic evaluation; every checkpoint_interval steps (and at the end) a
        checkpoint to `checkpoint`. Returns the agent."""
        cfg = self.config
        if total_steps is None:
            if self.schedule is None:
                raise ValueError("total_steps is required (no interrupted learn() to continue)")
        else:
            if not isinstance(total_steps, int) or total_steps < 1:
                raise ValueError(f"total_steps must be a positive int; got {total_steps!r}")
            self.schedule = (self.num_timesteps, self.num_timesteps + total_steps)
        per_rollout = cfg.num_envs * cfg.rollout_steps
        from tqdm.auto import tqdm
        bar = tqdm(total=self.schedule[1] - self.schedule[0], initial=self.num_timesteps - self.schedule[0],
                   disable=not progress, unit="step", desc=f"PPO {cfg.encoder} {self.env_name}")
        with torch_threads(cfg.threads):
            if self._envs is None:
                self._start()
            next_eval = self._next_multiple(cfg.eval_interval)
            next_ckpt = self._next_multiple(checkpoint_interval)
            while self.num_timesteps < self.schedule[1]:
                t0 = time.perf_counter()
                batch, state0 = self.collect()
                t1 = time.perf_counter()
                stats = self.update(batch, state0)
                t2 = time.perf_counter()
                recent = self._run["recent"][-100:]
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
        x = flatten_batch(self.observation_space, self._batch_space(n), obs)
        if not np.all(np.isfinite(x)):
            raise ValueError("obs contains NaN or inf")
        x = torch.from_numpy(self.normalizer.obs(x, update=False))
        if state is None:
            state = self.policy.init_state(n, actor_only=True)
        elif state is not self.__dict__.get("_returned"):  # what predict returned last is known to fit
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

    def _batch_space(self, n: int):
        """The space of n stacked observations (not needed, and not built, for Box observations)."""
        if isinstance(self.observation_space, gym.spaces.Box):
            return None
        cache = self.__dict__.setdefault("_batch_spaces", {})
        if n not in cache:
            cache[n] = gym.vector.utils.batch_space(self.observation_space, n)
        return cache[n]

    def _batch_size(self, obs) -> int:
        first = obs
        while isinstance(first, (dict, tuple)):
            first = next(iter(first.values())) if isinstance(first, dict) else first[0]
        arr = np.asarray(first)
        if arr.ndim == 0:
            raise ValueError("obs must have a leading env dimension (one row per env)")
        return arr.shape[0]

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
        """Everything needed to act, and to continue learning exactly (sync vector envs are saved with
        their state; async ones are recreated and reset on resume)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        envs = None
        if isinstance(self._envs, SyncVectorEnv):
            envs = io.BytesIO()
            torch.save(self._envs.envs, envs, pickle_protocol=4)
            envs = envs.getvalue()
        ckpt = {"format": "xseq.rl/1", "config": self.config.to_dict(), "seed": self.seed, "env_name": self.env_name,
                "env": self.config.env, "policy": self.policy.state_dict(), "optimizer": self.optimizer.state_dict(),
                "normalizer": self.normalizer.state_dict(), "generator": self.generator.get_state(),
                "shuffle": self.shuffle.bit_generator.state, "num_timesteps": self.num_timesteps,
                "schedule": self.schedule, "log": self.log, "envs": envs,
                "run": None if self._run is None else {**self._run, "state": self._run["state"].to_dict()}}
        tmp = path.with_suffix(path.suffix + ".tmp")
        torch.save(ckpt, tmp)
        tmp.replace(path)

    @classmethod
    def load(cls, path: str | Path, env=None) -> "RecurrentPPO":
        """Rebuild an agent from save(); `env` is needed only for an env that was given as a callable."""
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"no checkpoint at {str(path)!r}")
        ckpt = torch.load(path, weights_only=False)
        if not isinstance(ckpt, dict) or ckpt.get("format") != "xseq.rl/1":
            raise ValueError(f"{str(path)!r} is not an xseq.rl checkpoint")
        env = env if env is not None else ckpt["env"]
        if env is None:
            raise ValueError("this agent was trained on an env given as a callable: pass env= to load()")
        agent = cls(env, PPOConfig.from_dict(ckpt["config"]), seed=ckpt["seed"])
        agent.policy.load_state_dict(ckpt["policy"])
        agent.optimizer.load_state_dict(ckpt["optimizer"])
        agent.normalizer.load_state_dict(ckpt["normalizer"])
        agent.generator.set_state(ckpt["generator"])
        agent.shuffle.bit_generator.state = ckpt["shuffle"]
        agent.num_timesteps, agent.schedule, agent.log = ckpt["num_timesteps"], ckpt["schedule"], ckpt["log"]
        if ckpt["run"] is not None:
            run = dict(ckpt["run"])
            run["state"] = TensorDict.from_dict(run["state"], batch_size=[agent.config.num_envs])
            if ckpt["envs"] is not None:
                envs = torch.load(io.BytesIO(ckpt["envs"]), weights_only=False)
                agent._envs = agent._make_vec(len(envs), "sync", fns=[(lambda e=e: e) for e in envs])
                agent._run = run
            # async envs cannot be saved: learn() starts them afresh (results then differ from an uninterrupted run)
        return agent

    def close(self) -> None:
        if self._envs is not None:
            self._envs.close()
            self._envs = None
