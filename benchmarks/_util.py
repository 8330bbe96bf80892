"""Timing and memory helpers for the benchmarks: median of timed repeats after warm-up, and peak resident
memory growth sampled by a background thread (CPU torch has no allocator statistics)."""
from __future__ import annotations

import gc
import statistics
import time

import torch


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def peak_rss_growth_of(fn) -> int:
    """Bytes by which the process's high-water resident memory exceeds its current resident memory after
    running fn() once. Meant for a fresh child process that runs one case (see measure_in_child)."""
    gc.collect()
    before = rss_bytes()
    fn()
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across fork+exec
    with open("/proc/self/status") as f:
        hwm_kb = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    return hwm_kb * 1024 - before


def measure_in_child(script: str, *args: str) -> int | None:
    """Run `python script --child-memory ARGS` in a fresh process, which prints its peak growth in bytes.
    Memory is measured apart from timing so that one case's freed arenas cannot hide another's peak."""
    import os
    import subprocess
    import sys

    # allocations over 64 KB straight from mmap: freed tensors leave the resident set at once, so the
    # high-water mark is live memory rather than allocator arenas
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", MALLOC_ARENA_MAX="2")
    out = subprocess.run([sys.executable, script, "--child-memory", *args], capture_output=True, text=True, env=env)
    if out.returncode != 0:
        return None
    return int(out.stdout.strip().splitlines()[-1])


def timeit(fn, repeats: int = 5, warmup: int = 1, min_time: float = 0.0) -> float:
    """Median seconds per call of fn() after warm-up calls."""
    for _ in range(warmup):
        fn()
    times = []
    while len(times) < repeats or sum(times) < min_time:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def timeit_pair(fn_a, fn_b, repeats: int = 5, warmup: int = 1) -> tuple[float, float, float]:
    """Median seconds per call of fn_a and of fn_b, and the median of the per-round ratios a / b, with the
    two called alternately (a, b, b, a, ...) so that a shared machine's drift hits both sides alike."""
    for _ in range(warmup):
        fn_a()
        fn_b()
    ta, tb = [], []
    for i in range(repeats):
        for fn, out in ((fn_a, ta), (fn_b, tb)) if i % 2 == 0 else ((fn_b, tb), (fn_a, ta)):
            t0 = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t0)
    return statistics.median(ta), statistics.median(tb), statistics.median(a / b for a, b in zip(ta, tb))


def fmt_time(s: float) -> str:
    return f"{s * 1e3:9.1f} ms" if s < 10 else f"{s:9.2f} s "


def fmt_mem(b: float) -> str:
    return f"{b / 2**20:8.0f} MB"


def header(title: str) -> None:
    print(f"\n{title}\n  torch {torch.__version__}, threads={torch.get_num_threads()}")


def plot_lines(lines: dict[str, tuple], path: str, title: str, xlabel: str, ylabel: str, *, style: str = "-",
               hline: tuple[float, str] | None = None, symlog_x: float | None = None, size=(7, 4)) -> None:
    """One PNG with a line per entry of `lines` ({label: (x, y)}), an optional horizontal reference line
    (value, label) and an optional symmetric-log x axis (linear below `symlog_x`)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=size)
    for name, (x, y) in lines.items():
        ax.plot(x, y, style, ms=3, lw=1.2, label=name)
    if hline is not None:
        ax.axhline(hline[0], color="grey", ls="--", lw=1, label=hline[1])
    if symlog_x is not None:
        ax.set_xscale("symlog", linthresh=symlog_x)
        ax.set_xlim(left=0)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
