"""How long the command line takes to answer --help: `xseq --help` and `xseq COMMAND --help` for every
command, each in a fresh Python process (what a user waits for), the median of --repeats runs. For reference,
the same for a bare `python -c pass` and for `import xseq` (the package import every command pays first).

Usage: python benchmarks/cli_startup.py [--repeats 5] [--commands forecast classify ...]
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

COMMANDS = ["demo", "forecast", "classify", "rl", "lm", "synthetic"]


def seconds(argv: list[str], repeats: int) -> tuple[float, float, float, int]:
    """(median, min, max) wall seconds of `python argv...` in fresh processes, and the last exit status."""
    times, rc = [], 0
    for _ in range(repeats):
        t0 = time.perf_counter()
        rc = subprocess.run([sys.executable, *argv], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times), max(times), rc


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5, help="runs per command line (the median is printed)")
    p.add_argument("--commands", nargs="+", default=COMMANDS, help="the commands whose --help is timed")
    a = p.parse_args()
    lines = [("python -c pass", ["-c", "pass"]), ("python -c 'import xseq'", ["-c", "import xseq"]),
             ("xseq --help", ["-m", "xseq.cli", "--help"])]
    lines += [(f"xseq {c} --help", ["-m", "xseq.cli", c, "--help"]) for c in a.commands]
    print(f"wall seconds in a fresh process, median of {a.repeats} (min-max); python {sys.version.split()[0]}")
    for label, argv in lines:
        med, lo, hi, rc = seconds(argv, a.repeats)
        note = "" if rc == 0 else f"   exit status {rc}"
        print(f"  {label:<28s} {med:6.2f} s   ({lo:.2f}-{hi:.2f}){note}", flush=True)


if __name__ == "__main__":
    main()
