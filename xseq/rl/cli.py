"""`xseq rl train RECIPE [--steps N] [--seed S] [--log-dir D] [--resume]`: train RecurrentPPO from a recipe,
with a progress bar, a CSV log (and TensorBoard events where tensorboard is installed), periodic
deterministic evaluation, a checkpoint that --resume continues from, and a learning-curve PNG.

--steps is the run's TOTAL of env steps. With --resume the run continues from the log dir's checkpoint.pt up
to --steps in all (default: the total of the run that wrote the checkpoint), the annealing stretched to end
there; a checkpoint already there says so and trains nothing. A run killed at any point (checkpoints are written
by a rename, one per evaluation interval or rollout) and resumed ends with the weights, progress.csv and final
return of an uninterrupted run (progress.csv is rewritten from the checkpoint's own log)."""
from __future__ import annotations

import argparse
import csv
import math
from pathlib import Path

from ..common.cli import OneLineParser, add_common_flags, dispatch, existing_file, fail, nonneg_int, positive_int
from ..common.plots import learning_curve


class RunLog:
    """progress.csv with a fixed header (eval columns empty where no evaluation ran), TensorBoard scalars."""

    COLUMNS = ["step", "threads", "steps_per_s", "rollout_s", "update_s", "train_return", "eval_return",
               "eval_std", "pg_loss", "v_loss", "entropy", "clip_frac", "approx_kl", "lr", "clip_range"]

    def __init__(self, log_dir: Path, rows: list[dict] | None = None):
        """rows: the rows of the run being continued, as its checkpoint holds them (agent.log): the file is
        rewritten with them (a crash may have logged rows after its last checkpoint, or none since it), by a
        rename, so that a run killed meanwhile leaves the old file whole."""
        self.path = log_dir / "progress.csv"
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=self.COLUMNS, extrasaction="ignore")
            w.writeheader()
            w.writerows(rows or [])
        tmp.replace(self.path)
        self.file = open(self.path, "a", newline="")
        self.csv = csv.DictWriter(self.file, fieldnames=self.COLUMNS, extrasaction="ignore")
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


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="xseq rl", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    t = sub.add_parser("train", help="train from a recipe (or continue a run with --resume)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("recipe", type=existing_file, help="a recipe YAML (recipes/rl/*.yaml)")
    t.add_argument("--steps", type=positive_int, default=None, metavar="N",
                   help="env steps in all, summed over the envs and rounded up to whole rollouts (default: the "
                        "recipe's total_steps; with --resume, the total of the run being continued)")
    t.add_argument("--seed", type=nonneg_int, default=0, metavar="S",
                   help="seed of the agent and its envs (default 0; with --resume the checkpoint's)")
    t.add_argument("--log-dir", default=None, metavar="DIR",
                   help="where progress.csv, checkpoint.pt and learning_curve.png go (default: the recipe's "
                        "log_dir, else runs/rl/<recipe>-s<seed>)")
    t.add_argument("--resume", action="store_true",
                   help="continue from DIR/checkpoint.pt up to --steps in all (its agent, config and seed)")
    t.add_argument("--no-progress", action="store_true", help="no progress bar (--quiet implies it)")
    add_common_flags(t)
    t.set_defaults(fn=cmd_train)
    return p


def cmd_train(args) -> None:
    from .agent import RecurrentPPO  # torch and the agent load when a command runs, not for --help
    from .config import PPOConfig

    cfg = PPOConfig.from_yaml(args.recipe)
    log_dir = Path(args.log_dir or cfg.log_dir or f"runs/rl/{Path(args.recipe).stem}-s{args.seed}")
    if log_dir.exists() and not log_dir.is_dir():
        fail("--log-dir", f"is not a folder: {log_dir}")
    ckpt = log_dir / "checkpoint.pt"
    say = (lambda *a, **k: None) if args.quiet else print
    if args.resume:
        if not ckpt.is_file():
            fail("--resume", f"finds no checkpoint at {ckpt} (train without --resume first, or pass the --log-dir "
                             f"of the run to continue)")
        agent = RecurrentPPO.load(ckpt)
        cfg = agent.config
        target = args.steps or (agent.schedule[1] if agent.schedule else cfg.total_steps)
        if agent.num_timesteps >= target:
            reach = (f"already at --steps {target:,} or past it" if args.steps else
                     "the total of the run that wrote it")
            print(f"xseq rl: nothing to do: the checkpoint in {log_dir} is at {agent.num_timesteps:,} env steps, "
                  f"{reach}; pass --steps N with N > {agent.num_timesteps:,} to train further")
            agent.close()
            return
    else:
        agent = RecurrentPPO(None, cfg, seed=args.seed)
        target = args.steps or cfg.total_steps
    log_dir.mkdir(parents=True, exist_ok=True)
    log = RunLog(log_dir, rows=agent.log if args.resume else None)
    say(f"xseq rl: {agent.env_name}, encoder {cfg.encoder}, {sum(p.numel() for p in agent.policy.parameters()):,} "
        f"parameters, {cfg.num_envs} envs, torch threads {cfg.threads}; "
        + (f"from {agent.num_timesteps:,} to " if args.resume else "") + f"{target:,} env steps; logs in {log_dir}")
    try:
        agent.learn(until=target, progress=not (args.no_progress or args.quiet), checkpoint=ckpt,
                    checkpoint_interval=max(cfg.eval_interval, cfg.num_envs * cfg.rollout_steps), callback=log)
    finally:
        log.close()
    mean, std = agent.evaluate(cfg.eval_episodes)
    last = agent.log[-1]
    print(f"final deterministic return over {cfg.eval_episodes} episodes: {mean:.1f} +- {std:.1f} after "
          f"{agent.num_timesteps:,} env steps; {last['steps_per_s']:.0f} env steps/s on {last['threads']} torch "
          f"thread(s) (last rollout)")
    plot_learning_curve(agent.log, log_dir / "learning_curve.png", f"{agent.env_name} ({cfg.encoder})")
    agent.close()


def main(argv=None) -> None:
    dispatch(build_parser(), argv)
