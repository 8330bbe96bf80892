"""The fused CPU sLSTM (backend "numba") vs torch.nn.LSTM of the same hidden size, side by side in one
process, forward+backward and forward only, as ratios; the plain PyTorch reference (backend "torch") beside
them. Both sides include their input projection (sLSTM: block-diagonal per head, as in the block; nn.LSTM:
dense). Then the first-use compile time in a fresh process with an empty cache, and the load time from the
cache in a second fresh process.
The two sides run alternately, and the ratio printed is the median of the per-round ratios.
Usage: python benchmarks/slstm_cpu.py [--threads N] [--repeats 21]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _util import fmt_time, header, timeit, timeit_pair  # noqa: E402

from xseq import ops  # noqa: E402
from xseq.nn.layers import blockdiag_project  # noqa: E402

CASES = [(16, 256, 512, 4), (1, 1024, 128, 4)]  # B, T, d, heads


def case(B, T, d, H):
    Dh = d // H
    torch.manual_seed(0)
    x = torch.randn(B, T, d, requires_grad=True)
    W = (torch.randn(4, H, Dh, Dh) / Dh**0.5).requires_grad_()
    b = torch.zeros(H, 1, 4 * Dh, requires_grad=True)
    R = (torch.randn(4, H, Dh, Dh) / Dh**0.5).requires_grad_()
    lstm = torch.nn.LSTM(d, d, batch_first=True)

    def slstm(backend, grad):
        def run():
            with torch.set_grad_enabled(grad):
                gx = blockdiag_project(x, W, b).view(H, B, T, 4, Dh).movedim(0, -2)  # as in SLSTMLayer
                h, _ = ops.slstm(gx, R, backend=backend)
                if grad:
                    h.sum().backward()
        return run

    def nn_lstm(grad):
        def run():
            with torch.set_grad_enabled(grad):
                y, _ = lstm(x)
                if grad:
                    y.sum().backward()
        return run

    return slstm, nn_lstm


def compile_probe() -> None:
    """Child: the first fused call (compiles or loads from cache), then a second one."""
    gx, R = torch.randn(2, 8, 4, 2, 8, requires_grad=True), torch.randn(4, 2, 8, 8, requires_grad=True)
    t0 = time.perf_counter()
    h, _ = ops.slstm(gx, R, backend="numba")
    h.sum().backward()
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    h, _ = ops.slstm(gx, R, backend="numba")
    h.sum().backward()
    print(first, time.perf_counter() - t0)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--repeats", type=int, default=21)
    p.add_argument("--compile-probe", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.compile_probe:
        compile_probe()
        return
    torch.set_num_threads(args.threads)
    header("fused sLSTM (numba) vs torch.nn.LSTM, same hidden size; ratio < 1: the fused sLSTM is faster")
    for B, T, d, H in CASES:
        slstm, nn_lstm = case(B, T, d, H)
        print(f"\n  B={B}, T={T}, d={d}, {H} heads")
        for name, grad in (("forward+backward", True), ("forward only", False)):
            fused, peer, ratio = timeit_pair(slstm("numba", grad), nn_lstm(grad), args.repeats)
            ref = timeit(slstm("torch", grad), max(1, args.repeats // 4))
            print(f"  {name:<17s} fused {fmt_time(fused)}  nn.LSTM {fmt_time(peer)}  fused / nn.LSTM = "
                  f"{ratio:5.2f}   (reference {fmt_time(ref)}, fused / reference = {fused / ref:.2f})",
                  flush=True)

    print("\n  first use (fresh process, empty numba cache) and then from the cache (another fresh process):")
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        for label in ("empty cache", "warm cache"):
            t0 = time.perf_counter()
            out = subprocess.run([sys.executable, os.path.abspath(__file__), "--compile-probe"], env=env,
                                 capture_output=True, text=True, check=True)
            wall = time.perf_counter() - t0
            first, second = map(float, out.stdout.split()[-2:])
            print(f"  {label:<12s} first fused call {first:6.2f} s (second {second * 1e3:.1f} ms); "
                  f"process wall time {wall:.1f} s")


if __name__ == "__main__":
    main()
