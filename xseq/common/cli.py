"""What every `xseq` sub-command line shares.

  OneLineParser              argparse.ArgumentParser whose own errors (bad value, unknown option) are one line
  add_common_flags(parser)   --debug (show the traceback), --quiet / --verbose
  dispatch(parser, argv)     parse, run args.fn(args); a problem with the user's input (CLIError, ValueError,
                             FileNotFoundError) becomes ONE line `prog: error: ...` on stderr and exit status 2,
                             never a traceback (unless --debug)
  fail(flag, problem)        raise the CLIError for one flag: "--horizon must be >= 1, got 0"
  positive_int, nonneg_int, positive_float, fraction, existing_file, existing_path:
                             argparse `type=` checkers whose errors name the problem in the CLI's spelling
                             (argparse adds the flag: "argument --horizon: must be an integer >= 1, got 0")
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


class OneLineParser(argparse.ArgumentParser):
    """argparse's own errors (a bad value, an unknown option) as one line `prog: error: ...` and exit status 2,
    like every other problem with the input; --help shows the usage."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())}\n")


class CLIError(ValueError):
    """A problem with the command line's input, reported as one line (exit status 2)."""


def fail(flag: str, problem: str):
    raise CLIError(f"{flag} {problem}")


def add_common_flags(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("output")
    g.add_argument("--debug", action="store_true", help="show the full traceback when something fails")
    q = g.add_mutually_exclusive_group()
    q.add_argument("--quiet", action="store_true", help="print only the results (no progress bars)")
    q.add_argument("--verbose", action="store_true", help="also print the training framework's own messages")


def dispatch(parser: argparse.ArgumentParser, argv, fn=None):
    """Parse argv and run fn(args) (default: args.fn(args)); returns what it returns."""
    args = parser.parse_args(argv)
    run = fn if fn is not None else getattr(args, "fn", None)
    if run is None:
        parser.print_help(sys.stderr)
        raise SystemExit(2)
    try:
        return run(args)
    except (ValueError, FileNotFoundError, IsADirectoryError, NotADirectoryError, KeyError) as err:
        if getattr(args, "debug", False):
            raise
        msg = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"{parser.prog}: error: {_one_line(msg)}", file=sys.stderr)
        raise SystemExit(2) from None


def _one_line(msg) -> str:
    text = " ".join(str(msg).split())
    return text if text else "failed (run again with --debug for the traceback)"


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None


def positive_int(text: str) -> int:
    v = _int(text)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {v}")
    return v


def nonneg_int(text: str) -> int:
    v = _int(text)
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {v}")
    return v


def positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not v > 0 or v != v or v == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return v


def fraction(text: str) -> float:
    """A number in (0, 1)."""
    return _in_unit_interval(text, zero=False)


def fraction_or_zero(text: str) -> float:
    """A number in [0, 1) (0: none, e.g. no validation split)."""
    return _in_unit_interval(text, zero=True)


def _in_unit_interval(text: str, zero: bool) -> float:
    where = "[0, 1)" if zero else "(0, 1)"
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number in {where}, got {text!r}") from None
    if not (0 <= v < 1 if zero else 0 < v < 1):
        raise argparse.ArgumentTypeError(f"must be a number in {where}, got {text}")
    return v


def existing_file(text: str) -> Path:
    p = Path(text)
    if not p.is_file():
        raise argparse.ArgumentTypeError(f"no such file: {text}" if not p.exists() else f"not a file: {text}")
    return p


def data_file(text: str) -> Path:
    """An existing file, as given or under $XSEQ_DATA_DIR (like the xseq.datasets loaders)."""
    p = Path(text)
    root = os.environ.get("XSEQ_DATA_DIR")
    if not p.exists() and root and (Path(root) / p).exists():
        p = Path(root) / p
    if not p.exists():
        raise argparse.ArgumentTypeError(f"no such file: {text}")
    if not p.is_file():
        raise argparse.ArgumentTypeError(f"not a file: {text}")
    return p


def existing_path(text: str) -> Path:
    p = Path(text)
    if not p.exists():
        raise argparse.ArgumentTypeError(f"no such file or folder: {text}")
    return p
