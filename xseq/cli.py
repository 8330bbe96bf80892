"""The `xseq` command line."""
from __future__ import annotations

import sys


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {"demo": "xseq.forecast.cli", "forecast": "xseq.forecast.cli", "classify": "xseq.classify.cli",
                "rl": "xseq.rl.cli", "lm": "xseq.lm.cli", "synthetic": "xseq.synthetic.cli"}
    if not argv or argv[0] not in commands:
        print(f"usage: xseq {{{','.join(commands)}}} [options]", file=sys.stderr)
        return 2
    import importlib

    importlib.import_module(commands[argv[0]]).main(argv[1:])
    return 0


if __name__ == "__main__":
    sys.exit(main())
