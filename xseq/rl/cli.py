"""`xseq rl train RECIPE [--steps N] [--seed S] [--log-dir D] [--resume]`: train RecurrentPPO from a recipe,
with a progress bar, a CSV log (and TensorBoard events where tensorboard is installed), periodic
deterministic evaluation, a checkpoint that --resume continues from, and a learning-curve PNG."""
from __future__ import annotations

import argparse
import csv
import math
from pathlib import Path

from ..common.plots import learning_curve
from .agent import RecurrentPPO
from .config import PPOConfig


class RunLog:
    """progress.csv with a fixed header (eval columns empty where no evaluation ran), TensorBoard scalars."""

    COLUMNS = ["step", "threads", "steps_per_s", "rollout_s", "update_s", "train_return", "eval_return",
               "eval_std", "pg_loss", "v_loss", "entropy", "clip_frac", "approx_kl", "lr", "clip_range"]

    def __init__(self, log_dir: Path, append: bool):
        self.path = log_dir / "progress.csv"
        new = not (append and self.path.exists())
        self.file = open(self.path, "w" if new else "a", newline="")
        self.csv = csv.DictWriter(self.file, fieldnames=self.COLUMNS, extrasaction="ignore")
        if new:
            self.csv.writeheader()
        try:
            from torch.utils.tensorboard import SummaryWriter
            self.tb = SummaryWriter(str(log_dir / "tb"))
        except ImportError:  # tensorboard is optional
            self.tb = None

    def __call__(self, agent, row: dict) -> None:
        self.csv.writerow(row)
        self.file.flush()
        if self.tb is not None:
            for k, v in row.items():
                if k != "step" and isinstance(v, (int, float)) and math.isfinite(v):
                    self.tb.add_scalar(k, v, row["step"])

    def close(self) -> None:
        self.file.close()
        if self.tb is not None:
            self.tb.close()


def plot_learning_curve(log: list[dict], path: Path, title: str) -> None:
    ev = [r for r in log if "eval_return" in r]
    curves = [dict(x=[r["step"] for r in log], y=[r["train_return"] for r in log],
                   label="training episodes (mean of last 100)"),
              dict(x=[r["step"] for r in ev], y=[r["eval_return"] for r in ev], yerr=[r["eval_std"] for r in ev],
                   label="deterministic evaluation")]
    learning_curve(path, curves, title, "env steps", "episode return")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="xseq rl", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train from a recipe")
    t.add_argument("recipe", help="a recipe YAML (recipes/rl/*.yaml)")
    t.add_argument("--steps", type=int, default=None, help="env steps (default: the recipe's total_steps)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--log-dir", default=None, help="default: the recipe's log_dir, else runs/rl/<recipe>-s<seed>")
    t.add_argument("--resume", action="store_true", help="continue from the log dir's checkpoint.pt")
    t.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)

    cfg = PPOConfig.from_yaml(args.recipe)
    log_dir = Path(args.log_dir or cfg.log_dir or f"runs/rl/{Path(args.recipe).stem}-s{args.seed}")
    log_dir.mkdir(parents=True, exist_ok=True)
    ckpt = log_dir / "checkpoint.pt"
    steps = args.steps or cfg.total_steps
    if args.resume:
        if not ckpt.exists():
            raise SystemExit(f"--resume: no checkpoint at {ckpt}")
        agent = RecurrentPPO.load(ckpt)
    else:
        agent = RecurrentPPO(None, cfg, seed=args.seed)
    log = RunLog(log_dir, append=args.resume)
    print(f"xseq rl: {agent.env_name}, encoder {cfg.encoder}, {sum(p.numel() for p in agent.policy.parameters()):,} "
          f"parameters, {cfg.num_envs} envs, torch threads {cfg.threads}; logs in {log_dir}")
    try:
        agent.learn(None if args.resume else steps, progress=not args.no_progress, checkpoint=ckpt,
                    checkpoint_interval=max(cfg.eval_interval, cfg.num_envs * cfg.rollout_steps), callback=log)
    finally:
        log.close()
    mean, std = agent.evaluate(cfg.eval_episodes)
    last = agent.log[-1]
    print(f"final deterministic return over {cfg.eval_episodes} episodes: {mean:.1f} +- {std:.1f}; "
          f"{last['steps_per_s']:.0f} env steps/s on {last['threads']} torch thread(s) (last rollout)")
    plot_learning_curve(agent.log, log_dir / "learning_curve.png", f"{agent.env_name} ({cfg.encoder})")
    agent.close()
