"""xseq RecurrentPPO (recipes/rl/masked_cartpole.yaml) vs sb3-contrib RecurrentPPO (MlpLstmPolicy, the
rl-baselines3-zoo CartPoleNoVel-v1 hyperparameters), same env (xseq/MaskedCartPole-v0: CartPole-v1 without
the velocities), same PPO settings (8 envs, 32 steps, batch 256, 20 epochs, gamma 0.98, lambda 0.8, lr and
clip linear to 0, obs and reward normalisation), one torch thread each, one process, one after the other.
Prints env steps/s end to end, rollout and update time, the final deterministic 20-episode return, and the
cost of one predict() at batch 1, with ratios. Needs the bench extra (sb3-contrib).
Usage: python benchmarks/rl_vs_sb3.py [--steps 100000] [--seed 0]
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _util import header  # noqa: E402

from xseq.rl import RecurrentPPO  # noqa: E402

RECIPE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "recipes", "rl", "masked_cartpole.yaml")


def run_sb3(steps: int, seed: int) -> dict:
    from sb3_contrib import RecurrentPPO as SB3RecurrentPPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    class Timer(BaseCallback):
        def __init__(self):
            super().__init__()
            self.rollout, self._t = 0.0, 0.0

        def _on_rollout_start(self):
            self._t = time.perf_counter()

        def _on_rollout_end(self):
            self.rollout += time.perf_counter() - self._t

        def _on_step(self):
            return True

    def lin(v):
        return lambda progress_remaining: progress_remaining * v

    env = VecNormalize(make_vec_env("xseq/MaskedCartPole-v0", n_envs=8, seed=seed), gamma=0.98)
    model = SB3RecurrentPPO(
        "MlpLstmPolicy", env, n_steps=32, batch_size=256, n_epochs=20, gamma=0.98, gae_lambda=0.8, ent_coef=0.0,
        learning_rate=lin(1e-3), clip_range=lin(0.2), seed=seed, device="cpu", verbose=0,
        policy_kwargs=dict(ortho_init=False, activation_fn=torch.nn.ReLU, lstm_hidden_size=64,
                           enable_critic_lstm=True, net_arch=dict(pi=[64], vf=[64])))
    timer = Timer()
    t0 = time.perf_counter()
    model.learn(steps, callback=timer)
    wall = time.perf_counter() - t0
    # deterministic evaluation with frozen normalisation, 20 episodes over 8 envs (per-env targets)
    eval_env = VecNormalize(make_vec_env("xseq/MaskedCartPole-v0", n_envs=8, seed=seed + 10_000), gamma=0.98,
                            training=False, norm_reward=False)
    eval_env.obs_rms = env.obs_rms
    from stable_baselines3.common.evaluation import evaluate_policy
    mean, std = evaluate_policy(model, eval_env, n_eval_episodes=20, deterministic=True)
    obs = eval_env.reset()[:1]
    state, start = None, np.ones(1, bool)
    lat = _latency(lambda: model.predict(obs, state=state, episode_start=start, deterministic=True))
    params = sum(p.numel() for p in model.policy.parameters())
    return dict(name="sb3-contrib RecurrentPPO (LSTM 64)", params=params, steps=model.num_timesteps, wall=wall,
                rollout=timer.rollout, update=wall - timer.rollout, ret=(mean, std), predict=lat)


def run_ours(steps: int, seed: int) -> dict:
    agent = RecurrentPPO(None, RECIPE, seed=seed, eval_interval=0)
    t0 = time.perf_counter()
    agent.learn(steps, progress=False)
    wall = time.perf_counter() - t0
    mean, std = agent.evaluate(20)
    obs = np.zeros((1, 2), np.float32)
    _, state = agent.predict(obs, None, deterministic=True)
    lat = _latency(lambda: agent.predict(obs, state, deterministic=True))
    params = sum(p.numel() for p in agent.policy.parameters())
    c = agent.config
    return dict(name=f"xseq RecurrentPPO (xLSTM {c.xlstm.layout} d={c.xlstm.d_model})", params=params,
                steps=agent.num_timesteps, wall=wall, rollout=sum(r["rollout_s"] for r in agent.log),
                update=sum(r["update_s"] for r in agent.log), ret=(mean, std), predict=lat)


def _latency(fn, n: int = 2000) -> float:
    for _ in range(50):
        fn()
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=100_000)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    torch.set_num_threads(1)
    header(f"recurrent PPO on masked-velocity CartPole, {args.steps:,} env steps, seed {args.seed}")
    print(f"  torch threads: {torch.get_num_threads()} (both)")
    rows = [run_sb3(args.steps, args.seed), run_ours(args.steps, args.seed)]
    print(f"\n  {'agent':<38s} {'params':>7s} {'steps/s':>8s} {'rollout':>8s} {'update':>8s} {'return (20 ep)':>15s} "
          f"{'predict@1':>10s}")
    for r in rows:
        print(f"  {r['name']:<38s} {r['params']:7,d} {r['steps'] / r['wall']:8.0f} {r['rollout']:7.1f}s "
              f"{r['update']:7.1f}s {r['ret'][0]:8.1f} +- {r['ret'][1]:4.1f} {r['predict'] * 1e6:8.0f}us")
    sb3, ours = rows
    print(f"\n  env steps/s, ours / sb3-contrib: {(ours['steps'] / ours['wall']) / (sb3['steps'] / sb3['wall']):.2f}x"
          f"   predict at batch 1, ours / sb3-contrib: {ours['predict'] / sb3['predict']:.2f}")


if __name__ == "__main__":
    main()
