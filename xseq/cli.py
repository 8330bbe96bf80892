"""The `xseq` command line: `xseq COMMAND [options]`, `xseq COMMAND --help` for a command's options.

This module imports nothing heavy: the list of commands below is all that `xseq --help` needs, and a
command's own module (with torch, Lightning and the application) is imported only when that command runs.
"""
from __future__ import annotations

import sys

# name -> (module whose main(argv) runs it, one line for `xseq --help`)
COMMANDS = {
    "demo": ("xseq.forecast.cli", "the forecasting quickstart: xLSTM on monthly CO2, backtest, baselines, plot"),
    "forecast": ("xseq.forecast.cli", "train on a CSV of series (or a TiRex checkpoint), backtest, forecast, plot"),
    "classify": ("xseq.classify.cli", "train a sequence classifier on .ts files, test accuracy, confusion matrix"),
    "rl": ("xseq.rl.cli", "recurrent PPO from a recipe (xseq rl train RECIPE)"),
    "lm": ("xseq.lm.cli", "language models from recipes: params, prepare, train, generate, eval"),
    "synthetic": ("xseq.synthetic.cli", "the paper's capability tests: train RECIPE, summary"),
}


def usage() -> str:
    width = max(len(c) for c in [*COMMANDS, "-h, --help"]) + 2
    lines = ["usage: xseq COMMAND [options]", "",
             "xLSTM sequence models from the command line. Options of a command: xseq COMMAND --help", "",
             "commands:"]
    lines += [f"  {name:<{width}}{text}" for name, (_, text) in COMMANDS.items()]
    lines += ["", "options:", f"  {'-h, --help':<{width}}show this list and exit",
              f"  {'--version':<{width}}print the version and exit"]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        sys.stderr.write(usage())
        return 2
    first, rest = argv[0], argv[1:]
    if first in ("-h", "--help"):
        sys.stdout.write(usage())
        return 0
    if first == "--version":
        from importlib.metadata import PackageNotFoundError, version
        try:
            print(f"xseq {version('xseq')}")
        except PackageNotFoundError:
            print("xseq (version unknown: not installed)")
        return 0
    if first not in COMMANDS:
        what = "option" if first.startswith("-") else "command"
        print(f"xseq: error: unknown {what} {first!r}; the commands are {', '.join(COMMANDS)} "
              f"(xseq --help lists them)", file=sys.stderr)
        return 2
    import importlib

    module = importlib.import_module(COMMANDS[first][0])
    if first == "demo":
        module.main(rest, prog="xseq demo")
    else:
        module.main(rest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
