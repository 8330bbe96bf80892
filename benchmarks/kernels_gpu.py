"""Fused CUDA kernels beside their peers on one GPU, in one run (issue 10).

sLSTM (B=16, T=2048, 4 heads, d = 1024 and 512): xseq's fused kernel (backend="cuda") vs the official
`xlstm` package's CUDA sLSTM cell and torch.nn.LSTM (cuDNN) of the same hidden size, forward and
forward+backward, bfloat16 (cuDNN in bfloat16 too). mLSTM step: the fused step vs the PyTorch step.
Median of timed repeats after warm-up, with CUDA events. Peers that are not installed or fail are
reported, not skipped silently.
Usage: python benchmarks/kernels_gpu.py [--repeats 10] [--T 2048]"""
from __future__ import annotations

import argparse
import statistics
import sys
import traceback

import torch

from xseq import ops


def cuda_time(fn, repeats: int, warmup: int = 2) -> float:
    """Median milliseconds of fn() over `repeats` timed calls after `warmup` untimed ones (CUDA events)."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def fwd_bwd(run, leaves):
    def fn():
        for x in leaves:
            x.grad = None
        out = run()
        out.float().sum().backward()
    return fn


def ours(B, T, d, H, dtype):
    gx = torch.randn(B, T, 4, H, d // H, device="cuda", dtype=dtype, requires_grad=True)
    R = (torch.randn(4, H, d // H, d // H, device="cuda") / (d // H) ** 0.5).to(dtype).requires_grad_()

    def run():
        return ops.slstm(gx, R, backend="cuda")[0]
    return run, [gx, R]


def cudnn(B, T, d, H, dtype):
    lstm = torch.nn.LSTM(d, d, batch_first=True).to("cuda", dtype)
    x = torch.randn(B, T, d, device="cuda", dtype=dtype, requires_grad=True)

    def run():
        return lstm(x)[0]
    return run, [x, *lstm.parameters()]


def official(B, T, d, H, dtype):
    from xlstm.blocks.slstm.cell import sLSTMCell, sLSTMCellConfig

    name = {torch.bfloat16: "bfloat16", torch.float32: "float32"}[dtype]
    cell = sLSTMCell(sLSTMCellConfig(hidden_size=d, num_heads=H, backend="cuda", batch_size=B, dtype=name,
                                     enable_automatic_mixed_precision=False)).to("cuda")
    x = torch.randn(B, T, 4 * d, device="cuda", dtype=dtype, requires_grad=True)

    def run():
        out = cell(x)
        return out[0] if isinstance(out, tuple) else out
    return run, [x, *cell.parameters()]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--T", type=int, default=2048)
    p.add_argument("--B", type=int, default=16)
    args = p.parse_args()
    if not torch.cuda.is_available():
        sys.exit("kernels_gpu needs a CUDA device")
    print(f"device {torch.cuda.get_device_name()}, torch {torch.__version__}, median of {args.repeats} after warm-up")
    dtype = torch.bfloat16
    print(f"\nsLSTM, B={args.B}, T={args.T}, 4 heads, bfloat16: milliseconds (ratio = peer / ours)")
    print(f"  {'d':>5s} {'impl':<22s} {'forward':>10s} {'fwd+bwd':>10s} {'ratio f':>8s} {'ratio fb':>8s}")
    for d in (1024, 512):
        base = None
        for name, make in (("xseq fused (cuda)", ours), ("official xlstm cuda", official), ("torch.nn.LSTM (cuDNN)", cudnn)):
            try:
                run, leaves = make(args.B, args.T, d, 4, dtype)
                with torch.no_grad():
                    f = cuda_time(run, args.repeats)
                fb = cuda_time(fwd_bwd(run, leaves), args.repeats)
            except Exception as e:  # a missing or failing peer is reported in the table
                print(f"  {d:5d} {name:<22s} failed: {type(e).__name__}: {str(e).splitlines()[0][:120]}")
                traceback.print_exc(limit=2, file=sys.stderr)
                continue
            if make is ours:
                base = (f, fb)
            ratios = f"{f / base[0]:8.2f} {fb / base[1]:8.2f}" if base else f"{'-':>8s} {'-':>8s}"
            print(f"  {d:5d} {name:<22s} {f:10.2f} {fb:10.2f} {ratios}", flush=True)
            del run, leaves
            torch.cuda.empty_cache()
    print("\nmLSTM step (generation / streaming, no autograd), 4 heads, Dqk = Dv = 256: microseconds per step")
    print(f"  {'B':>5s} {'dtype':<9s} {'fused (cuda)':>13s} {'PyTorch step':>13s} {'ratio':>7s}")
    for B in (1, 16, 256):
        for dt in (torch.float32, torch.bfloat16):
            q, k, v = (torch.randn(B, 4, 256, device="cuda", dtype=dt) for _ in range(3))
            ig, fg = (torch.randn(B, 4, device="cuda", dtype=dt) for _ in range(2))
            _, state = ops.mlstm_step(q, k, v, ig, fg, backend="torch")
            with torch.no_grad():
                times = [1000 * cuda_time(lambda b=b: ops.mlstm_step(q, k, v, ig, fg, state, backend=b), 200)
                         for b in ("cuda", "torch")]
            print(f"  {B:5d} {str(dt)[6:]:<9s} {times[0]:13.1f} {times[1]:13.1f} {times[1] / times[0]:7.2f}")
    print("\nmLSTM sequences: the fused CUDA chunkwise kernels are not written yet (issue 10)")


if __name__ == "__main__":
    main()
