"""Where the memory is: recall by distance on POPGym's Autoencode. Trains xLSTM PPO, LSTM PPO and feed-forward
PPO on 4 stacked frames with rl_popgym's settings and protocol, then plays deterministic episodes with each
trained agent and records, for every step of the play phase, whether the suit it named was right.

In Autoencode the agent watches N cards (N = 52 at Easy, 104 at Medium) and must then name them in reverse
order. The j-th answer of the play phase (j = 0, 1, ...) asks for the card shown 2j steps earlier: the first
answer's card is in the current observation, the second's two frames back, so 4 stacked frames reach only
j = 0 and 1, and for the rest a policy without memory is at chance (1/4). The table gives the accuracy in
bins of j, then the return that those accuracies amount to and the best mean evaluation return on the way (the
figure of rl_popgym's tables); the PNG the accuracy at every j.
Needs the bench extra (popgym).
Usage: python benchmarks/rl_autoencode_recall.py [--task AutoencodeMedium] [--steps 2000000] [--seed 0]
       [--rollout-steps 256] [--episodes 64] [--out runs/popgym_recall] [--agents ...] [--xlstm-layout ms]
       [--time-features 0]
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rl_popgym  # noqa: E402
from _util import header, plot_lines  # noqa: E402

BINS = [(0, 2), (2, 4), (4, 8), (8, 16), (16, 32), (32, None)]


def recall_by_position(agent, episodes: int, seed: int) -> np.ndarray:
    """Correct (1) or wrong (0) per play step and episode, shape (episodes, N), from deterministic play.
    Autoencode's play steps are the ones with a nonzero reward: +1/N for the right suit, -1/N otherwise."""
    n = min(episodes, 8)
    vec = agent._make_vec(n, "sync")
    obs, _ = vec.reset(seed=seed)
    state, start = None, np.ones(n, bool)
    rows, current = [], [[] for _ in range(n)]
    while len(rows) < episodes:
        action, state = agent.predict(obs, state, start, deterministic=True)
        obs, r, term, trunc, _ = vec.step(action)
        for i in range(n):
            if r[i] != 0:
                current[i].append(float(r[i] > 0))
        start = np.logical_or(term, trunc)
        for i in np.flatnonzero(start):
            if len(rows) < episodes:
                rows.append(current[i])
            current[i] = []
    vec.close()
    if len({len(x) for x in rows}) != 1:
        raise RuntimeError("play phases of different lengths: not an Autoencode task")
    return np.array(rows)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", default="AutoencodeMedium", choices=["AutoencodeEasy", "AutoencodeMedium"])
    p.add_argument("--steps", type=int, default=2_000_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rollout-steps", type=int, default=256)
    p.add_argument("--episodes", type=int, default=64, help="deterministic episodes played per agent")
    p.add_argument("--out", default="runs/popgym_recall")
    rl_popgym.add_agent_args(p)
    args = p.parse_args()
    agents = rl_popgym.agents_from_args(args, p)
    if args.steps < 1 or args.episodes < 1 or args.rollout_steps < 1:
        p.error("--steps, --episodes and --rollout-steps must be positive")
    torch.set_num_threads(1)
    rl_popgym.set_rollout(args.rollout_steps)
    os.makedirs(args.out, exist_ok=True)
    header(f"{args.task}: recall by distance after {args.steps:,} env steps, seed {args.seed}, rollout "
           f"{args.rollout_steps}, {args.episodes} deterministic episodes per agent (chance 0.25)")
    labels = [f"j {a}-{b - 1}" if b else f"j {a}-" for a, b in BINS]
    print(f"  {'agent':<20s}" + "".join(f"{x:>9s}" for x in labels) + "   return  best eval   minutes")
    acc = {}
    for name, kw in agents.items():
        t0 = time.perf_counter()
        agent, curve = rl_popgym.train_curve(rl_popgym.popgym_env(args.task), args.steps, args.seed, **kw)
        hits = recall_by_position(agent, args.episodes, seed=args.seed + 20_000)
        agent.close()
        acc[name] = a = hits.mean(0)
        cols = [a[lo:hi].mean() for lo, hi in BINS]
        ret = float((2 * hits - 1).sum(1).mean() / hits.shape[1])
        print(f"  {name:<20s}" + "".join(f"{c:9.3f}" for c in cols) + f"  {ret:7.3f}"
              f"  {max(r for _, r in curve):9.3f}   {(time.perf_counter() - t0) / 60:6.1f}", flush=True)
        stem = f"{args.task}_seed{args.seed}_{re.sub(r'[^A-Za-z0-9]+', '_', name).strip('_')}"
        np.savetxt(os.path.join(args.out, stem + ".txt"), hits, fmt="%d")
    path = os.path.join(args.out, f"{args.task}_seed{args.seed}.png")
    plot_lines({name: (np.arange(a.size), a) for name, a in acc.items()}, path,
               f"{args.task}: accuracy by answer, {args.steps:,} steps, seed {args.seed}",
               "answer j of the play phase (its card was shown 2j steps earlier)", "accuracy",
               hline=(0.25, "chance"), symlog_x=1, size=(8, 4))
    print(f"  accuracy by answer: {path}")


if __name__ == "__main__":
    main()
