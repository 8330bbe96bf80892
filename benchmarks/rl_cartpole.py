"""Masked-velocity CartPole with recipes/rl/masked_cartpole.yaml: xLSTM PPO for several seeds (deterministic
20-episode evaluation at each checkpoint step), beside feed-forward PPO and feed-forward PPO on 4 stacked
frames with the same PPO settings and budget, in one process. Writes a learning-curve PNG.
Usage: python benchmarks/rl_cartpole.py [--seeds 0 1 2] [--checkpoints 100000 150000] [--out runs/bench]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _util import header  # noqa: E402

from xseq.rl import RecurrentPPO  # noqa: E402

RECIPE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "recipes", "rl", "masked_cartpole.yaml")


def train(label: str, seed: int, checkpoints: list[int], **overrides) -> dict:
    agent = RecurrentPPO(None, RECIPE, seed=seed, eval_interval=0, **overrides)
    out, t0 = {}, time.perf_counter()
    for target in checkpoints:
        agent.learn(target - agent.num_timesteps, progress=False)
        out[target] = agent.evaluate(20)
    wall = time.perf_counter() - t0
    print(f"  {label:<28s} seed {seed}: " + "  ".join(f"{s // 1000}k: {m:6.1f} +- {sd:5.1f}" for s, (m, sd) in out.items())
          + f"   {agent.num_timesteps / wall:5.0f} env steps/s ({torch.get_num_threads()} thread)", flush=True)
    return {"label": label, "seed": seed, "evals": out, "log": agent.log}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--checkpoints", type=int, nargs="+", default=[100_000, 150_000])
    p.add_argument("--out", default="runs/bench")
    args = p.parse_args()
    torch.set_num_threads(1)
    header("masked-velocity CartPole: deterministic 20-episode mean return")
    results = [train("xLSTM PPO (recipe)", s, args.checkpoints) for s in args.seeds]
    first = args.checkpoints[:1]
    results.append(train("feed-forward PPO", args.seeds[0], first, encoder="mlp"))
    results.append(train("feed-forward PPO, 4 frames", args.seeds[0], first, encoder="mlp", frame_stack=4))
    xl = [r for r in results if r["label"].startswith("xLSTM")]
    for step in args.checkpoints:
        ok = sum(r["evals"][step][0] >= 475 for r in xl)
        print(f"  xLSTM seeds with return >= 475 at {step // 1000}k: {ok} of {len(xl)}")
    Path(args.out).mkdir(parents=True, exist_ok=True)
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4))
    for r in results:
        ax.plot([x["step"] for x in r["log"]], [x["train_return"] for x in r["log"]], lw=1,
                label=f"{r['label']} (seed {r['seed']})")
    ax.set_xlabel("env steps")
    ax.set_ylabel("training return (mean of last 100 episodes)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(Path(args.out) / "rl_cartpole.png", dpi=110)
    print(f"  learning curves: {Path(args.out) / 'rl_cartpole.png'}")


if __name__ == "__main__":
    main()
