"""Masked-velocity CartPole with recipes/rl/masked_cartpole.yaml: xLSTM PPO for several seeds (deterministic
20-episode evaluation after a 100k-step run; a seed below 475 gets a fresh run with a 150k budget, the
learning rate and clip range annealed over it), beside feed-forward PPO and feed-forward PPO on 4 stacked
frames with the same PPO settings and the first budget, in one process. Writes a learning-curve PNG.
Usage: python benchmarks/rl_cartpole.py [--seeds 0 1 2] [--budgets 100000 150000] [--out runs/bench]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _util import header  # noqa: E402

from xseq.rl import RecurrentPPO  # noqa: E402

RECIPE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "recipes", "rl", "masked_cartpole.yaml")


def train(label: str, seed: int, budget: int, **overrides) -> dict:
    """One training run with learning rate and clip range annealed over `budget` env steps."""
    agent = RecurrentPPO(None, RECIPE, seed=seed, eval_interval=0, **overrides)
    t0 = time.perf_counter()
    agent.learn(budget, progress=False)
    wall = time.perf_counter() - t0
    mean, std = agent.evaluate(20)
    print(f"  {label:<28s} seed {seed}, budget {budget // 1000:3d}k: {mean:6.1f} +- {std:5.1f}   "
          f"{agent.num_timesteps / wall:5.0f} env steps/s ({torch.get_num_threads()} torch thread)", flush=True)
    return {"label": label, "seed": seed, "budget": budget, "return": mean, "log": agent.log}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--budgets", type=int, nargs="+", default=[100_000, 150_000])
    p.add_argument("--out", default="runs/bench")
    args = p.parse_args()
    torch.set_num_threads(1)
    header("masked-velocity CartPole: deterministic 20-episode mean return")
    first = args.budgets[0]
    results = []
    for seed in args.seeds:  # a seed that misses 475 gets a fresh run with the next budget
        for budget in args.budgets:
            results.append(train("xLSTM PPO (recipe)", seed, budget))
            if results[-1]["return"] >= 475:
                break
    results.append(train("feed-forward PPO", args.seeds[0], first, encoder="mlp"))
    results.append(train("feed-forward PPO, 4 frames", args.seeds[0], first, encoder="mlp", frame_stack=4))
    for budget in args.budgets:
        ok = {r["seed"] for r in results if r["label"].startswith("xLSTM") and r["budget"] <= budget
              and r["return"] >= 475}
        print(f"  xLSTM seeds at >= 475 with a budget of {budget // 1000}k: {len(ok)} of {len(args.seeds)}")
    Path(args.out).mkdir(parents=True, exist_ok=True)
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4))
    for r in results:
        ax.plot([x["step"] for x in r["log"]], [x["train_return"] for x in r["log"]], lw=1,
                label=f"{r['label']} (seed {r['seed']}, {r['budget'] // 1000}k)")
    ax.set_xlabel("env steps")
    ax.set_ylabel("training return (mean of last 100 episodes)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(Path(args.out) / "rl_cartpole.png", dpi=110)
    print(f"  learning curves: {Path(args.out) / 'rl_cartpole.png'}")


if __name__ == "__main__":
    main()
