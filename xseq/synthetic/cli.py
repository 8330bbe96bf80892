"""`xseq synthetic`: the paper's capability tests (D.1).

  xseq synthetic train RECIPE [--models a,b] [--steps N] [--out DIR]   train and evaluate, one model after another
  xseq synthetic summary [--out DIR]                                    the results table beside the paper's values
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..common.cli import dispatch
from .config import SyntheticRecipe
from .paper import MODEL_NAMES, paper_value


def cmd_train(args) -> None:
    from .training import train_one
    recipe = SyntheticRecipe.from_yaml(args.recipe)
    if args.steps:
        recipe = recipe.replace_train(steps=args.steps)
    if args.seed is not None:
        recipe = recipe.replace_train(seed=args.seed)
    if args.lr is not None:
        recipe = recipe.replace_train(lr=args.lr)
    names = args.models.split(",") if args.models else list(recipe.models)
    for name in names:
        r = train_one(recipe, name, args.out, progress=not args.no_progress)
        paper = paper_value(r["task"], name)
        extra = ("" if "by_length" not in r
                 else "  by length " + ", ".join(f"{k}: {v:.2f}" for k, v in r["by_length"].items()))
        print(f"{r['task']:>16} {name:>12}: scaled accuracy {r['scaled_accuracy']:.3f} (accuracy {r['accuracy']:.3f}"
              f"{'' if paper is None else f'; paper {paper:.2f}'}), {r['parameters']:,} parameters, "
              f"{r['steps']} steps x batch {r['batch_size']} in {r['train_s']:.0f} s{extra}", flush=True)


def summary_table(out: Path) -> str:
    rows: dict[str, dict[str, dict]] = {}
    for path in sorted(out.glob("*/*.json")):
        r = json.loads(path.read_text())
        rows.setdefault(r["model"], {})[r["task"]] = r
    if not rows:
        raise ValueError(f"no results under {out}; run `xseq synthetic train` first")
    tasks = sorted({t for m in rows.values() for t in m})
    width = max(18, *(len(t) for t in tasks)) + 1
    lines = ["scaled accuracy: ours (paper) and our training steps; formal tasks trained on lengths <= 40, evaluated "
             "on 40-256; MQAR: accuracy",
             f"{'model':<12}" + "".join(f"{t:>{width}}" for t in tasks)]
    order = [m for m in MODEL_NAMES if m in rows] + sorted(set(rows) - set(MODEL_NAMES))
    for m in order:
        cells = []
        for t in tasks:
            r = rows[m].get(t)
            p = paper_value(t, m)
            ours = "-" if r is None else f"{r['scaled_accuracy'] if not t.startswith('mqar') else r['accuracy']:.2f}"
            steps = "" if r is None else f" {r['steps'] / 1000:g}k"
            cells.append(f"{ours + ('' if p is None else f' ({p:.2f})') + steps:>{width}}")
        lines.append(f"{MODEL_NAMES.get(m, m):<12}" + "".join(cells))
    return "\n".join(lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="xseq synthetic", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train and evaluate the recipe's models")
    t.add_argument("recipe")
    t.add_argument("--models", default=None, help="comma-separated subset of the recipe's models")
    t.add_argument("--steps", type=int, default=None)
    t.add_argument("--seed", type=int, default=None)
    t.add_argument("--lr", type=float, default=None, help="peak learning rate (the paper sweeps 1e-2, 1e-3, 1e-4)")
    t.add_argument("--out", default="runs/synthetic")
    t.add_argument("--no-progress", action="store_true")
    t.set_defaults(fn=cmd_train)
    s = sub.add_parser("summary", help="print the results table with the paper's values")
    s.add_argument("--out", default="runs/synthetic")
    s.set_defaults(fn=lambda a: print(summary_table(Path(a.out))))
    dispatch(p, argv)
