"""Fused CUDA kernels beside their peers on one GPU, in one run (issue 10).

sLSTM (B=16, T=2048, 4 heads, d = 1024 and 512): xseq's fused kernel (backend="cuda") vs the official
`xlstm` package's CUDA sLSTM cell and torch.nn.LSTM (cuDNN) of the same hidden size, forward and
forward+backward, bfloat16 (cuDNN in bfloat16 too). mLSTM step: the fused step vs the PyTorch step.
mLSTM sequences (B=8, H=8, T = 2k, 8k, 16k, Dqk = Dv = 128 and 256, bfloat16): the chunkwise kernels vs the
official `mlstm_kernels` chunkwise Triton kernels (xl_chunk) and causal scaled_dot_product_attention on the
FlashAttention backend, forward and forward+backward, with achieved TFLOP/s against the device's measured
bf16 matmul and copy ceilings. Median of timed repeats after warm-up, with CUDA events. Peers that are not
installed or fail are reported, not skipped silently.
Usage: python benchmarks/kernels_gpu.py [--repeats 10] [--T 2048] [--skip-slstm] [--mlstm-T 2048 8192 16384]"""
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
    p.add_argument("--skip-slstm", action="store_true")
    p.add_argument("--mlstm-T", type=int, nargs="+", default=[2048, 8192, 16384])
    args = p.parse_args()
    if not torch.cuda.is_available():
        sys.exit("kernels_gpu needs a CUDA device")
    print(f"device {torch.cuda.get_device_name()}, torch {torch.__version__}, median of {args.repeats} after warm-up")
    dtype = torch.bfloat16
    if args.skip_slstm:
        mlstm_sequences(args)
        return
    print(f"\nsLSTM, B={args.B}, T={args.T}, 4 heads, bfloat16: milliseconds (ratio = peer / ours)")
    print(f"  {'d':>5s} {'impl':<22s} {'forward':>10s} {'fwd+bwd':>10s} {'ratio f':>8s} {'ratio fb':>8s}")
    for d in (1024, 512):
        base = None
        for name, make in (("xseq fused (cuda)", ours), ("official xlstm cuda", official),
                           ("torch.nn.LSTM (cuDNN)", cudnn)):
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
    mlstm_sequences(args)


def ceilings():
    """The device's measured bf16 matmul TFLOP/s and device-to-device copy GB/s."""
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    ms = cuda_time(lambda: a @ a, 10)
    x = torch.empty(2**30, device="cuda", dtype=torch.uint8)
    y = torch.empty_like(x)
    copy = cuda_time(lambda: y.copy_(x), 10)
    return 2 * 8192**3 / ms / 1e9, 2 * 2**30 / copy / 1e6


def mlstm_flops(B, H, T, D, L=64):
    """Forward multiply-adds x 2 of the chunkwise form: the causal intra-chunk products (q k^T and the weighted
    sum of v, half of each L x L block) and the inter-chunk ones (the state update k^T v and q C)."""
    return 2 * B * H * T * (L * D + 2 * D * D)


def mlstm_sequences(args):
    import torch.nn.functional as F

    peak, bw = ceilings()
    print(f"\nmLSTM sequences, B=8, H=8, bfloat16 (device ceilings measured here: bf16 matmul {peak:.0f} TFLOP/s, "
          f"copy {bw:.0f} GB/s): milliseconds (ratio = peer / ours)")
    print(f"  {'T':>6s} {'D':>4s} {'impl':<26s} {'forward':>9s} {'fwd+bwd':>9s} {'ratio f':>8s} {'ratio fb':>8s} "
          f"{'TFLOP/s f':>9s}")
    B, H, dt = 8, 8, torch.bfloat16
    for T in args.mlstm_T:
        for D in (128, 256):
            base = None
            for name in ("xseq chunkwise (cuda)", "official xl_chunk (triton)", "SDPA causal (flash)"):
                try:
                    leaves = [torch.randn(B, H, T, D, device="cuda", dtype=dt, requires_grad=True) for _ in range(3)]
                    gates = [torch.randn(B, H, T, device="cuda", dtype=dt, requires_grad=True) for _ in range(2)]
                    if name.startswith("xseq"):
                        def run():
                            return ops.mlstm(*leaves, *gates, backend="cuda")[0]
                        args_ = leaves + gates
                    elif name.startswith("official"):
                        from mlstm_kernels.torch.chunkwise import mlstm_chunkwise__xl_chunk

                        def run():
                            return mlstm_chunkwise__xl_chunk(*leaves, *gates, chunk_size=128)
                        args_ = leaves + gates
                    else:
                        from torch.nn.attention import SDPBackend, sdpa_kernel

                        def run():
                            with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
                                return F.scaled_dot_product_attention(*leaves, is_causal=True)
                        args_ = leaves
                    with torch.no_grad():
                        f = cuda_time(run, args.repeats)
                    fb = cuda_time(fwd_bwd(run, args_), args.repeats)
                except Exception as e:
                    print(f"  {T:6d} {D:4d} {name:<26s} failed: {type(e).__name__}: {str(e).splitlines()[0][:100]}")
                    traceback.print_exc(limit=2, file=sys.stderr)
                    continue
                finally:
                    torch.cuda.empty_cache()
                if name.startswith("xseq"):
                    base = (f, fb)
                ratios = f"{f / base[0]:8.2f} {fb / base[1]:8.2f}" if base else f"{'-':>8s} {'-':>8s}"
                tflops = mlstm_flops(B, H, T, D) / f / 1e9 if not name.startswith("SDPA") else \
                    4 * B * H * T * T / 2 * D / f / 1e9
                print(f"  {T:6d} {D:4d} {name:<26s} {f:9.2f} {fb:9.2f} {ratios} {tflops:9.1f}", flush=True)


if __name__ == "__main__":
    main()
