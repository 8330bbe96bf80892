"""Shared by the sub-command line tools: run the chosen sub-command; a ValueError (bad input) becomes a
one-line error and exit status 2, not a traceback."""
from __future__ import annotations

import argparse
import sys


def dispatch(parser: argparse.ArgumentParser, argv) -> None:
    args = parser.parse_args(argv)
    try:
        args.fn(args)
    except ValueError as err:
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
