"""CPU speed and memory of the core ops, side by side in one process.

1. mLSTM forward+backward, B=1, H=4, D=64, T = 1k, 4k, 16k: chunkwise vs parallel vs recurrent vs
   torch's causal scaled_dot_product_attention (same head size). Chunkwise should grow linearly in T.
2. sLSTM forward+backward (input projection + recurrence, B=16, T=256, d=512, 4 heads) vs torch.nn.LSTM
   of the same hidden size, as a ratio.
Usage: python benchmarks/ops_cpu.py [--threads N] [--lengths 1024 4096 16384] [--repeats 3]
"""
from __future__ import annotations

import argparse
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _util import fmt_mem, fmt_time, header, measure_in_child, peak_rss_growth_of, timeit  # noqa: E402

from xseq import ops  # noqa: E402


def mlstm_case(mode, T, B=1, H=4, D=64, chunk_size=64):
    q, k, v = (torch.randn(B, H, T, D, requires_grad=True) for _ in range(3))
    ig = torch.randn(B, H, T, requires_grad=True)
    fg = (torch.randn(B, H, T) + 3).requires_grad_()

    def run():
        if mode == "sdpa":
            h = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            h, _ = ops.mlstm(q, k, v, ig, fg, mode=mode, chunk_size=chunk_size)
        h.sum().backward()
        for x in (q, k, v, ig, fg):
            x.grad = None
    return run


def parallel_bytes(T, B=1, H=4):
    """The parallel form keeps about eight T x T float32 matrices alive for the backward."""
    return 8 * B * H * T * T * 4


def bench_mlstm(lengths, repeats, mem_limit, recurrent_max):
    header("mLSTM forward+backward on CPU: B=1, H=4, Dqk=Dv=64 (chunk 64); peak RSS = growth of resident memory "
           "over one fwd+bwd, measured in a fresh process")
    print(f"  {'T':>6s}  {'mode':<10s} {'time':>12s} {'peak RSS':>11s}  {'time / T (us)':>13s}")
    results = {}
    for T in lengths:
        for mode in ("chunkwise", "parallel", "recurrent", "sdpa"):
            if mode == "recurrent" and T > recurrent_max:
                print(f"  {T:>6d}  {mode:<10s}   skipped: a Python loop of {T} steps (raise --recurrent-max to run it)")
                continue
            if mode == "parallel" and parallel_bytes(T) > mem_limit:
                print(f"  {T:>6d}  {mode:<10s}   skipped: needs ~{parallel_bytes(T) / 2**30:.0f} GB "
                      f"(quadratic in T), over the {mem_limit / 2**30:.0f} GB limit")
                continue
            run = mlstm_case(mode, T)
            reps = 1 if (mode == "recurrent" and T > 1024) else repeats
            t = timeit(run, repeats=reps, warmup=0 if reps == 1 else 1)
            del run
            results[(mode, T)] = t
            peak = measure_in_child(os.path.abspath(__file__), mode, str(T))
            mem = fmt_mem(peak) if peak is not None else "    failed"
            print(f"  {T:>6d}  {mode:<10s} {fmt_time(t)} {mem}  {t / T * 1e6:13.1f}", flush=True)
    if ("chunkwise", lengths[0]) in results and ("chunkwise", lengths[-1]) in results:
        growth = results[("chunkwise", lengths[-1])] / results[("chunkwise", lengths[0])]
        print(f"  chunkwise time grows {growth:.1f}x for {lengths[-1] // lengths[0]}x longer sequences")
    for T in lengths:
        if ("sdpa", T) in results:
            print(f"  T={T:>5d}: chunkwise / sdpa time = {results[('chunkwise', T)] / results[('sdpa', T)]:.2f}")


def bench_slstm(repeats, B=16, T=256, d=512, H=4):
    header(f"sLSTM forward+backward on CPU vs torch.nn.LSTM: B={B}, T={T}, hidden {d}, {H} heads")
    Dh = d // H
    x = torch.randn(B, T, d, requires_grad=True)
    W = (torch.randn(4, H, Dh, Dh) / Dh**0.5).requires_grad_()  # block-diagonal input projection per gate
    b = torch.zeros(4, H, Dh, requires_grad=True)
    R = (torch.randn(4, H, Dh, Dh) / Dh**0.5).requires_grad_()
    lstm = torch.nn.LSTM(d, d, batch_first=True)

    def ours():
        gx = torch.einsum("bthd,ghde->btghe", x.unflatten(-1, (H, Dh)), W) + b
        h, _ = ops.slstm(gx, R)
        h.sum().backward()

    def ours_fwd():
        with torch.no_grad():
            gx = torch.einsum("bthd,ghde->btghe", x.unflatten(-1, (H, Dh)), W) + b
            ops.slstm(gx, R)

    def theirs():
        y, _ = lstm(x)
        y.sum().backward()

    def theirs_fwd():
        with torch.no_grad():
            lstm(x)

    rows = [("forward+backward", ours, theirs), ("forward only", ours_fwd, theirs_fwd)]
    params_ours = W.numel() + b.numel() + R.numel()
    params_lstm = sum(p.numel() for p in lstm.parameters())
    print(f"  parameters: sLSTM {params_ours:,} (block-diagonal), nn.LSTM {params_lstm:,} (dense)")
    for name, a, c in rows:
        ta, tc = timeit(a, repeats), timeit(c, repeats)
        print(f"  {name:<17s} sLSTM (backend=auto) {fmt_time(ta)}   nn.LSTM {fmt_time(tc)}   "
              f"sLSTM / nn.LSTM = {ta / tc:.2f}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--lengths", type=int, nargs="+", default=[1024, 4096, 16384])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--mem-limit-gb", type=float, default=12.0, help="skip the parallel form above this estimate")
    p.add_argument("--recurrent-max", type=int, default=16384, help="longest T for the recurrent mode")
    p.add_argument("--child-memory", nargs=2, metavar=("MODE", "T"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child_memory:  # a fresh process measuring one mLSTM case's peak memory
        mode, T = args.child_memory
        mlstm_case(mode, 128)()  # library initialisation (thread pools, kernels) is not the op's memory
        print(peak_rss_growth_of(mlstm_case(mode, int(T))))
        return
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    bench_mlstm(args.lengths, args.repeats, args.mem_limit_gb * 2**30, args.recurrent_max)
    bench_slstm(args.repeats)


if __name__ == "__main__":
    main()
