"""Memory where frame stacking fails: POPGym's diagnostic environments (RepeatFirst, RepeatPrevious,
CountRecall, Autoencode; Easy and Medium) with the same budget for each of xLSTM PPO, LSTM PPO through the
same code (an nn.LSTM encoder) and feed-forward PPO on 4 stacked frames; then the project's cue-recall task
(delay 50) for xLSTM and feed-forward PPO. Prints the best mean deterministic evaluation return of each.
Needs the bench extra (popgym).
Every evaluation is written to OUT/curves_seed<S>.csv (task, agent, seed, gamma, rollout, env steps, mean
return) and each task's learning curves, one line per agent (every agent's latest run in that CSV with the
same discount and rollout, so agents run by separate invocations share the plot), to OUT/<task>_seed<S>.png.
Usage: python benchmarks/rl_popgym.py [--steps 2000000] [--tasks RepeatFirstEasy ...] [--seed 0]
       [--gamma 0.0] [--rollout-steps 128] [--cue-steps N (0 skips cue recall)] [--anneal interval|budget]
       [--out runs/popgym] [--agents xLSTM LSTM "FF, 4 frames"] [--xlstm-layout ms] [--time-features 0]
"""
from __future__ import annotations

import argparse
import csv
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _util import header, plot_lines  # noqa: E402

from xseq.nn.config import XLSTMConfig  # noqa: E402
from xseq.rl import RecurrentPPO  # noqa: E402

TASKS = ["RepeatFirstEasy", "RepeatFirstMedium", "RepeatPreviousEasy", "RepeatPreviousMedium",
         "CountRecallEasy", "CountRecallMedium", "AutoencodeEasy", "AutoencodeMedium"]
MODULES = {"RepeatFirst": "repeat_first", "RepeatPrevious": "repeat_previous", "CountRecall": "count_recall",
           "Autoencode": "autoencode"}
# PPO settings shared by every agent (POPGym's own baselines use long rollouts and a small learning rate).
# gamma = 0 by default: in these four diagnostics an action changes only its own step's reward, never a later
# observation or reward, so discounting future rewards adds variance and no information (--gamma 0.99
# reproduces the earlier table). The memory demand is unchanged: the reward still depends on the past.
PPO = dict(num_envs=8, rollout_steps=128, minibatch_size=256, epochs=4, gamma=0.0, gae_lambda=0.95,
           learning_rate=5e-4, anneal_lr=True, clip_range=0.2, anneal_clip=False, ent_coef=0.01,
           normalize_obs=False, normalize_reward=False, threads=1)
ANNEAL = ("interval", "budget")
LAYOUT = "ms"  # the xLSTM agent's blocks (mLSTM then sLSTM) in every table unless marked


def xlstm_agent(layout: str = LAYOUT) -> dict:
    return dict(encoder="xlstm", xlstm=XLSTMConfig(d_model=64, layout=layout, mlstm={"num_heads": 4},
                                                   slstm={"num_heads": 4}))


AGENTS = {
    "xLSTM": xlstm_agent(),
    "LSTM": dict(encoder="lstm", hidden_size=64),
    "FF, 4 frames": dict(encoder="mlp", hidden_size=64, frame_stack=4),
}


def add_agent_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--agents", nargs="+", default=list(AGENTS), metavar="AGENT",
                   help=f"agents to train, some of {list(AGENTS)} (default: all)")
    p.add_argument("--xlstm-layout", default=LAYOUT,
                   help=f"block layout of the xLSTM agent, a string of 'm' and 's' (default {LAYOUT!r}); another "
                        "layout is reported as 'xLSTM <layout>'")
    p.add_argument("--time-features", type=int, default=0, metavar="N",
                   help="give every agent the episode clock of PPOConfig.time_features (N sinusoids of the step "
                        "index in the episode, an even number; default 0: none); its agents are reported as "
                        "'<agent> +clock'")


def agents_from_args(args, p: argparse.ArgumentParser) -> dict[str, dict]:
    """The agents to run, by display name, from --agents and --xlstm-layout (errors name the argument)."""
    unknown = [a for a in args.agents if a not in AGENTS]
    if unknown:
        p.error(f"--agents: unknown {unknown}; expected some of {list(AGENTS)}")
    try:
        xlstm = xlstm_agent(args.xlstm_layout)
    except ValueError as e:
        p.error(f"--xlstm-layout: {e}")
    if args.time_features < 0 or args.time_features % 2:
        p.error(f"--time-features: expected an even number >= 0 (a sin and a cos per frequency), got "
                f"{args.time_features}")
    clock = dict(time_features=args.time_features) if args.time_features else {}
    out = {}
    for name in (a for a in AGENTS if a in args.agents):
        kw = xlstm if name == "xLSTM" else AGENTS[name]
        if name == "xLSTM" and args.xlstm_layout != LAYOUT:
            name = f"xLSTM {args.xlstm_layout}"
        out[name + (" +clock" if clock else "")] = dict(kw, **clock)
    return out


def popgym_env(task: str):
    import importlib

    stem = next(k for k in MODULES if task.startswith(k))
    cls = getattr(importlib.import_module(f"popgym.envs.{MODULES[stem]}"), task)
    return lambda: cls()


def set_rollout(steps: int) -> None:
    """Rollout (and training sequence) length per env of every agent; minibatches of whole sequences, about 256
    env steps (at least one sequence)."""
    PPO["rollout_steps"] = steps
    PPO["minibatch_size"] = steps * max(1, 256 // steps)


def eval_curve(env, steps: int, seed: int, evals: int = 10, episodes: int = 32, anneal: str = "interval",
               **kw) -> list[tuple[int, float]]:
    """Train for `steps` env steps and evaluate `evals` times on the way: [(env steps, mean return), ...]."""
    agent, curve = train_curve(env, steps, seed, evals, episodes, anneal, **kw)
    agent.close()
    return curve


def train_curve(env, steps: int, seed: int, evals: int = 10, episodes: int = 32, anneal: str = "interval",
                **kw) -> tuple[RecurrentPPO, list[tuple[int, float]]]:
    """Train for `steps` env steps and evaluate `evals` times on the way; returns the trained agent and
    [(env steps, mean return), ...].
    anneal="interval" (the protocol of the README's tables): one learn() call per evaluation interval, so the
    learning rate anneals linearly to 0 within each interval and restarts at the next (warm restarts; every
    evaluation sees the end of a cycle). anneal="budget": one learn() call over the whole budget, the
    learning rate annealed once, evaluations taken from its callback."""
    if anneal not in ANNEAL:
        raise ValueError(f"anneal must be one of {ANNEAL}; got {anneal!r}")
    agent = RecurrentPPO(env, seed=seed, eval_interval=0, eval_episodes=episodes, **PPO, **kw)
    curve = []
    chunk = max(steps // evals, agent.config.num_envs * agent.config.rollout_steps)
    if anneal == "interval":
        while agent.num_timesteps < steps:
            agent.learn(min(chunk, steps - agent.num_timesteps), progress=False)
            curve.append((agent.num_timesteps, float(agent.evaluate(episodes)[0])))
    else:
        due = [chunk]

        def evaluate_when_due(a, _row):
            if a.num_timesteps >= due[0] or a.num_timesteps >= steps:
                curve.append((a.num_timesteps, float(a.evaluate(episodes)[0])))
                while due[0] <= a.num_timesteps:
                    due[0] += chunk

        agent.learn(steps, progress=False, callback=evaluate_when_due)
    return agent, curve


def curves_from_csv(path: str, task: str, gamma: float, rollout: int) -> dict[str, list[tuple[int, float]]]:
    """Every agent's latest learning curve for one task, discount and rollout in a curves CSV: agents trained
    by separate invocations (say, split over processes) end up in one plot. A run of an agent that is already
    there replaces it (its env steps start again)."""
    out: dict[str, list[tuple[int, float]]] = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            if row["task"] != task or float(row["gamma"]) != gamma or int(row["rollout_steps"]) != rollout:
                continue
            curve, step = out.setdefault(row["agent"], []), int(row["env_steps"])
            if curve and step <= curve[-1][0]:
                curve.clear()
            curve.append((step, float(row["mean_return"])))
    return out


def plot_curves(curves: dict[str, list[tuple[int, float]]], path: str, title: str) -> None:
    plot_lines({name: ([s for s, _ in c], [r for _, r in c]) for name, c in curves.items()}, path, title,
               "env steps", "mean deterministic return (32 episodes)", style="o-")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=2_000_000)
    p.add_argument("--tasks", nargs="+", default=TASKS)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--gamma", type=float, default=PPO["gamma"],
                   help="discount of every agent on the POPGym tasks (the cue-recall runs use 0.99)")
    p.add_argument("--rollout-steps", type=int, default=PPO["rollout_steps"],
                   help="rollout (and training sequence) length per env of every agent; minibatches hold "
                        "whole sequences, about 256 env steps")
    p.add_argument("--cue-steps", type=int, default=None,
                   help="budget of the cue-recall runs (default: --steps; 0 skips them)")
    p.add_argument("--anneal", choices=ANNEAL, default="interval",
                   help="interval (default, the README's tables): the learning rate anneals to 0 within each of "
                        "the 10 evaluation intervals and restarts; budget: it anneals once over --steps")
    p.add_argument("--out", default="runs/popgym", help="folder of the learning-curve CSV and PNG files")
    add_agent_args(p)
    args = p.parse_args()
    agents = agents_from_args(args, p)
    unknown = [t for t in args.tasks if t not in TASKS]
    if unknown:
        p.error(f"--tasks: unknown {unknown}; expected some of {TASKS}")
    if args.rollout_steps < 1:
        p.error(f"--rollout-steps: expected a positive number of steps, got {args.rollout_steps}")
    torch.set_num_threads(1)
    PPO["gamma"] = args.gamma
    set_rollout(args.rollout_steps)
    os.makedirs(args.out, exist_ok=True)
    csv_path = os.path.join(args.out, f"curves_seed{args.seed}.csv")
    if not os.path.exists(csv_path):
        with open(csv_path, "w", newline="") as f:
            csv.writer(f).writerow(["task", "agent", "seed", "gamma", "rollout_steps", "env_steps", "mean_return"])
    header(f"POPGym diagnostics, best mean evaluation return, {args.steps:,} env steps each, seed {args.seed}, "
           f"gamma {args.gamma}, rollout {args.rollout_steps}, learning rate annealed per {args.anneal}")
    width = {a: max(14, len(a) + 2) for a in agents}
    print(f"  {'task':<22s}" + "".join(f"{a:>{width[a]}s}" for a in agents) + "   minutes")
    for task in args.tasks:
        t0 = time.perf_counter()
        curves = {}
        for name, kw in agents.items():
            curves[name] = curve = eval_curve(popgym_env(task), args.steps, args.seed, anneal=args.anneal, **kw)
            with open(csv_path, "a", newline="") as f:  # written per agent, so a stopped run keeps what it did
                csv.writer(f).writerows([task, name, args.seed, args.gamma, args.rollout_steps, s, f"{r:.4f}"]
                                        for s, r in curve)
        plot_curves(curves_from_csv(csv_path, task, args.gamma, args.rollout_steps),
                    os.path.join(args.out, f"{task}_seed{args.seed}.png"),
                    f"{task}, seed {args.seed}, gamma {args.gamma}, rollout {args.rollout_steps}, "
                    f"anneal per {args.anneal}")
        scores = {a: max(r for _, r in c) for a, c in curves.items()}
        print(f"  {task:<22s}" + "".join(f"{s:{width[a]}.3f}" for a, s in scores.items())
              + f"   {(time.perf_counter() - t0) / 60:6.1f}", flush=True)
    steps = args.steps if args.cue_steps is None else args.cue_steps
    cue_agents = [a for a in agents if a.startswith(("xLSTM", "FF, 4 frames"))]
    if steps == 0 or not cue_agents:
        return
    PPO["gamma"] = 0.99  # as measured for the issue; the cue task is a one-step bandit at its end either way
    print(f"\n  cue recall, delay 50 (success rate = mean return; chance 0.5), {steps:,} env steps")
    for name in cue_agents:
        score = max(r for _, r in eval_curve("xseq/CueRecall-v0", steps, args.seed, episodes=100,
                                                anneal=args.anneal, env_kwargs={"delay": 50}, **agents[name]))
        print(f"  {name:<20s} {score:.3f}", flush=True)


if __name__ == "__main__":
    main()
