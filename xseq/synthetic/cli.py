"""`xseq synthetic`: the paper's capability tests (D.1).

  xseq synthetic train RECIPE [--models a,b] [--steps N] [--eval-samples N] [--out DIR]
                                                                        train and evaluate, one model after another
  xseq synthetic summary [--out DIR]                                    the results table beside the paper's values

Results go to DIR/TASK/MODEL.json (and a learning-curve PNG beside it); summary reads them back.
"""
from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from ..common.cli import (
    CLIError,
    OneLineParser,
    add_common_flags,
    dispatch,
    fail,
    nonneg_int,
    positive_float,
    positive_int,
)

DEFAULT_OUT = "runs/synthetic"
SECTIONS = {"TaskConfig": "task", "SynTrainConfig": "train", "EvalConfig": "eval"}


def recipe_file(text: str) -> Path:
    p = Path(text)
    if not p.exists():
        raise argparse.ArgumentTypeError(f"no such file: {text} (the recipes ship in recipes/synthetic/)")
    if not p.is_file():
        raise argparse.ArgumentTypeError(f"not a file: {text}")
    return p


def load_recipe(path: Path):
    """The recipe, with its problems (YAML syntax, unknown keys, bad values) named after the file."""
    import yaml

    from .config import SyntheticRecipe

    try:
        return SyntheticRecipe.from_yaml(path)
    except yaml.YAMLError as err:
        mark, problem = getattr(err, "problem_mark", None), getattr(err, "problem", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        fail(f"RECIPE {path.name}:", f"not valid YAML ({where}{problem or ' '.join(str(err).split())})")
    except (ValueError, TypeError) as err:
        msg = str(err)
        for cls, section in SECTIONS.items():
            msg = re.sub(rf"unknown {cls} field\(s\) (\[.*?\]); known: ", rf"unknown key(s) \1 in {section}; known: ",
                         msg)
            msg = msg.replace(f"{cls} must be given as a mapping", f"{section}: must be a mapping")
        fail(f"RECIPE {path.name}:", msg)


def cmd_train(args) -> None:
    recipe = load_recipe(args.recipe)
    changes = {k: v for k, v in (("steps", args.steps), ("seed", args.seed), ("lr", args.lr)) if v is not None}
    if args.lr is not None and args.lr < recipe.train.min_lr:
        fail("--lr", f"must be >= the recipe's train.min_lr ({recipe.train.min_lr:g}), got {args.lr:g}")
    if changes:
        recipe = recipe.replace_train(**changes)
    if args.eval_samples is not None:
        recipe = recipe.replace_eval(samples=args.eval_samples)
    names = [n.strip() for n in args.models.split(",")] if args.models is not None else list(recipe.models)
    if not all(names):
        fail("--models", f"{args.models!r} has an empty name; give the recipe's model names separated by commas, "
                         f"e.g. {','.join(list(recipe.models)[:2])}")
    unknown = [n for n in names if n not in recipe.models]
    if unknown:
        fail("--models", f"{', '.join(map(repr, unknown))} not in the recipe; it has {', '.join(recipe.models)}")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        fail("--out", f"must be a folder (it holds TASK/MODEL.json and .png); {out} is a file")

    from .models import build_model
    from .paper import paper_value
    from .training import task_vocab, train_one

    vocab, _ = task_vocab(recipe.task)
    for name in names:  # every model spec is checked before the first one trains
        try:
            build_model(recipe.models[name], vocab)
        except (ValueError, TypeError) as err:
            raise CLIError(f"RECIPE {args.recipe.name}: model {name!r}: {err}") from err
    progress = not (args.no_progress or args.quiet)
    for name in names:
        r = train_one(recipe, name, out, progress=progress)
        paper = paper_value(r["task"], name)
        extra = ("" if "by_length" not in r
                 else "  by length " + ", ".join(f"{k}: {v:.2f}" for k, v in r["by_length"].items()))
        print(f"{r['task']:>16} {name:>12}: scaled accuracy {r['scaled_accuracy']:.3f} (accuracy {r['accuracy']:.3f}"
              f"{'' if paper is None else f'; paper {paper:.2f}'}), {r['parameters']:,} parameters, "
              f"{r['steps']} steps x batch {r['batch_size']} in {r['train_s']:.0f} s{extra}", flush=True)


def steps_label(steps: int) -> str:
    """30 -> "30", 5000 -> "5k", 12500 -> "12.5k"."""
    return str(steps) if steps < 1000 else f"{steps / 1000:g}k"


def summary_table(out: Path) -> str:
    from .paper import MODEL_NAMES, paper_value

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
            steps = "" if r is None else f" {steps_label(r['steps'])}"
            cells.append(f"{ours + ('' if p is None else f' ({p:.2f})') + steps:>{width}}")
        lines.append(f"{MODEL_NAMES.get(m, m):<12}" + "".join(cells))
    return "\n".join(lines)


def cmd_summary(args) -> None:
    out = Path(args.out)
    if not out.is_dir() or not any(out.glob("*/*.json")):
        what = "holds no results (TASK/MODEL.json)" if out.is_dir() else "is not a folder"
        fail("--out", f"{out} {what}; run `xseq synthetic train RECIPE --out {out}` first")
    try:
        print(summary_table(out))
    except (json.JSONDecodeError, KeyError) as err:
        fail("--out", f"{out} holds a .json file that is not an xseq synthetic result ({err})")


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="xseq synthetic", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True, title="commands", metavar="COMMAND",
                           help="train or summary (xseq synthetic COMMAND --help: its options)")
    t = sub.add_parser("train", help="train and evaluate the recipe's models", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("recipe", type=recipe_file, metavar="RECIPE",
                   help="a YAML recipe with task, models, train and eval sections (e.g. recipes/synthetic/parity.yaml)")
    t.add_argument("--models", default=None, metavar="A,B",
                   help="comma-separated subset of the recipe's models (default: all of them)")
    t.add_argument("--steps", type=positive_int, default=None, metavar="N",
                   help="training steps per model (default: the recipe's train.steps)")
    t.add_argument("--eval-samples", type=positive_int, default=None, metavar="N",
                   help="evaluation sequences per model (default: the recipe's eval.samples; fewer for a first look)")
    t.add_argument("--seed", type=nonneg_int, default=None, help="random seed (default: the recipe's train.seed)")
    t.add_argument("--lr", type=positive_float, default=None,
                   help="peak learning rate (default: the recipe's train.lr; the paper sweeps 1e-2, 1e-3, 1e-4)")
    t.add_argument("--out", default=DEFAULT_OUT, metavar="DIR",
                   help=f"folder for the results, DIR/TASK/MODEL.json and .png (default: {DEFAULT_OUT})")
    t.add_argument("--no-progress", action="store_true", help="no progress bar (the same as --quiet)")
    add_common_flags(t)
    t.set_defaults(fn=cmd_train)
    s = sub.add_parser("summary", help="print the results table with the paper's values",
                       description="The results under --out as a table: tasks as columns, models as rows, the "
                                   "paper's values in brackets and our training steps.")
    s.add_argument("--out", default=DEFAULT_OUT, metavar="DIR",
                   help=f"the folder `xseq synthetic train` wrote to (default: {DEFAULT_OUT})")
    add_common_flags(s)
    s.set_defaults(fn=cmd_summary)
    return p


def main(argv=None) -> None:
    """Run the command. A problem with the input prints one line `xseq synthetic: error: ...` and exits with
    status 2 (see xseq.common.cli.dispatch)."""
    dispatch(build_parser(), argv)
