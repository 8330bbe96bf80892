"""Fused CUDA kernels beside their peers on one GPU, in one run (issue 10).

sLSTM (B=16, T=2048, 4 heads, d = 1024 and 512): xseq's fused kernel (backend="cuda") vs the official
`xlstm` package's CUDA sLSTM cell and torch.nn.LSTM (cuDNN) of the same hidden size, forward and
forward+backward, bfloat16 (cuDNN in bfloat16 too). mLSTM step: the fused step vs the PyTorch step.
mLSTM sequences (B=8, H=8, T = 2k, 8k, 16k, Dqk = Dv = 128 and 256, bfloat16): the chunkwise kernels vs the
official `mlstm_kernels` chunkwise Triton kernels (xl_chunk) and causal scaled_dot_product_attention on the
FlashAttention backend, forward and forward+backward, with achieved TFLOP/s against the device's measured
bf16 matmul and copy ceilings. Median of timed repeats after warm-up, with CUDA events. Peers that are not
installed or fail are reported, not skipped silently.
Our rows load the extensions explicitly: a failed build is reported as a failed row, never timed as the PyTorch
fallback. The PyTorch forms of xseq (the sLSTM reference loop, the mLSTM chunkwise form) are timed beside them.
Usage: python benchmarks/kernels_gpu.py [--repeats 10] [--T 2048] [--sections slstm step seq]
                                        [--mlstm-T 2048 8192 16384]
       python benchmarks/kernels_gpu.py --build-official 1024 512   (JIT-build the official sLSTM kernels only)"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import traceback

import torch

from xseq import ops
from xseq.ops import cuda_ext


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
    cuda_ext.load("slstm")  # raises where the build fails, rather than timing the fallback
    gx = torch.randn(B, T, 4, H, d // H, device="cuda", dtype=dtype, requires_grad=True)
    R = (torch.randn(4, H, d // H, d // H, device="cuda") / (d // H) ** 0.5).to(dtype).requires_grad_()

    def run():
        return ops.slstm(gx, R, backend="cuda")[0]
    return run, [gx, R]


def ours_split(B, T, d, H, dtype):
    """Ours with each step's cluster barrier split into arrive and wait (slstm_split_cluster_barrier, which
    slstm_sequences switches on around the whole timing, backward pass included)."""
    return ours(B, T, d, H, dtype)


def reference(B, T, d, H, dtype):
    gx = torch.randn(B, T, 4, H, d // H, device="cuda", dtype=dtype, requires_grad=True)
    R = (torch.randn(4, H, d // H, d // H, device="cuda") / (d // H) ** 0.5).to(dtype).requires_grad_()

    def run():
        return ops.slstm(gx, R, backend="torch")[0]
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


def build_official(sizes, B):
    """JIT-build (and cache) the official sLSTM kernels for each hidden size, so that timing runs find them."""
    for d in sizes:
        t0 = time.perf_counter()
        run, _ = official(B, 8, d, 4, torch.bfloat16)
        with torch.no_grad():
            run()
        torch.cuda.synchronize()
        print(f"official xlstm sLSTM d={d}: built and ran in {time.perf_counter() - t0:.0f} s", flush=True)


def slstm_flops(B, T, d, H, impl):
    """Forward multiply-adds x 2 of the recurrence: block-diagonal R (4 gates x d x d/H per step) for the
    sLSTMs; cuDNN's LSTM has a dense R and its input product too (2 x 4d x d per step)."""
    return 2 * B * T * (2 * 4 * d * d if impl == "cudnn" else 4 * d * (d // H))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--T", type=int, default=2048)
    p.add_argument("--B", type=int, default=16)
    p.add_argument("--sections", nargs="+", choices=["slstm", "step", "seq", "profile"],
                   default=["slstm", "step", "seq"])
    p.add_argument("--mlstm-T", type=int, nargs="+", default=[2048, 8192, 16384])
    p.add_argument("--build-official", type=int, nargs="+", metavar="D", default=None)
    p.add_argument("--official-child", nargs="+", metavar="T:D", default=None, help=argparse.SUPPRESS)
    p.add_argument("--no-torch-form", action="store_true", help="mLSTM sequences: skip the PyTorch chunkwise rows")
    args = p.parse_args()
    if not torch.cuda.is_available():
        sys.exit("kernels_gpu needs a CUDA device")
    if args.official_child:
        official_child([tuple(map(int, c.split(":"))) for c in args.official_child], args.repeats)
        return
    if args.build_official:
        build_official(args.build_official, args.B)
        return
    print(f"device {torch.cuda.get_device_name()}, torch {torch.__version__}, median of {args.repeats} after warm-up")
    for stem in ("slstm", "mlstm"):
        t0 = time.perf_counter()
        try:
            cuda_ext.load(stem)
            print(f"xseq {stem} extension loaded in {time.perf_counter() - t0:.1f} s")
        except Exception as e:  # its rows then report the failure
            print(f"xseq {stem} extension FAILED to build: {type(e).__name__}: {str(e)[-400:]}")
    if "slstm" in args.sections:
        slstm_sequences(args)
    if "step" in args.sections:
        mlstm_step()
    if "seq" in args.sections:
        mlstm_sequences(args)
    if "profile" in args.sections:
        profile()


def profile():
    """Where the time of our kernels goes: torch.profiler's per-kernel device time of one forward+backward call
    (sLSTM B=16, T=2048, d=1024; mLSTM B=H=8, T=8192, D=128), after a warm-up call."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    cases = [("sLSTM d=1024", lambda: ours(16, 2048, 1024, 4, torch.bfloat16))]

    def mlstm_case():
        leaves = [torch.randn(8, 8, 8192, 128, device="cuda", dtype=torch.bfloat16, requires_grad=True)
                  for _ in range(3)]
        gates = [torch.randn(8, 8, 8192, device="cuda", dtype=torch.bfloat16, requires_grad=True) for _ in range(2)]
        return (lambda: ops.mlstm(*leaves, *gates, backend="cuda")[0]), leaves + gates
    cases.append(("mLSTM T=8192 D=128", mlstm_case))
    for name, make in cases:
        try:
            run, leaves = make()
            step = fwd_bwd(run, leaves)
            step()
            torch.cuda.synchronize()
            with torch_profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
                step()
                torch.cuda.synchronize()
            avg = prof.key_averages()
            try:
                table = avg.table(sort_by="self_device_time_total", row_limit=14, max_name_column_width=60)
            except (AttributeError, KeyError, ValueError):
                table = avg.table(sort_by="self_cuda_time_total", row_limit=14, max_name_column_width=60)
            print(f"\nprofile, {name}, one forward+backward:\n{table}", flush=True)
        except Exception as e:
            print(f"\nprofile, {name}: failed: {type(e).__name__}: {str(e).splitlines()[0][:120]}")
            traceback.print_exc(limit=3, file=sys.stderr)
        finally:
            torch.cuda.empty_cache()


def slstm_sequences(args):
    dtype = torch.bfloat16
    print(f"\nsLSTM, B={args.B}, T={args.T}, 4 heads, bfloat16: milliseconds (ratio = peer / ours)")
    print(f"  {'d':>5s} {'impl':<22s} {'forward':>10s} {'fwd+bwd':>10s} {'ratio f':>8s} {'ratio fb':>8s} "
          f"{'TFLOP/s f':>9s}")
    for d in (1024, 512):
        base = None
        for name, make in (("xseq fused (cuda)", ours), ("xseq fused, split barrier", ours_split),
                           ("official xlstm cuda", official),
                           ("torch.nn.LSTM (cuDNN)", cudnn), ("xseq reference (torch)", reference)):
            # the reference is a Python loop over T, seconds per call: timed briefly
            repeats, warmup = (2, 0) if make is reference else (args.repeats, 2)
            split = None  # the built extension, while its split-barrier variant is switched on
            try:
                run, leaves = make(args.B, args.T, d, 4, dtype)
                if make is ours_split:
                    split = cuda_ext.load("slstm")
                    split.split_barrier(True)
                with torch.no_grad():
                    f = cuda_time(run, repeats, warmup)
                fb = cuda_time(fwd_bwd(run, leaves), repeats, warmup)
            except Exception as e:  # a missing or failing peer is reported in the table
                print(f"  {d:5d} {name:<22s} failed: {type(e).__name__}: {str(e).splitlines()[0][:120]}")
                traceback.print_exc(limit=2, file=sys.stderr)
                continue
            finally:
                if split is not None:
                    split.split_barrier(False)
            if make is ours:
                base = (f, fb)
            ratios = f"{f / base[0]:8.2f} {fb / base[1]:8.2f}" if base else f"{'-':>8s} {'-':>8s}"
            tflops = slstm_flops(args.B, args.T, d, 4, "cudnn" if make is cudnn else "slstm") / f / 1e9
            print(f"  {d:5d} {name:<22s} {f:10.2f} {fb:10.2f} {ratios} {tflops:9.2f}", flush=True)
            del run, leaves
            torch.cuda.empty_cache()


def mlstm_step():
    try:
        cuda_ext.load("mlstm")
    except Exception as e:
        print(f"\nmLSTM step: xseq mlstm extension failed to build ({type(e).__name__}); not timed")
        return
    print("\nmLSTM step (generation / streaming, no autograd, validate=False), 4 heads, Dqk = Dv = 256: "
          "microseconds per step")
    print(f"  {'B':>5s} {'dtype':<9s} {'fused (cuda)':>13s} {'PyTorch step':>13s} {'ratio':>7s}")
    for B in (1, 16, 256):
        for dt in (torch.float32, torch.bfloat16):
            q, k, v = (torch.randn(B, 4, 256, device="cuda", dtype=dt) for _ in range(3))
            ig, fg = (torch.randn(B, 4, device="cuda", dtype=dt) for _ in range(2))
            _, state = ops.mlstm_step(q, k, v, ig, fg, backend="torch")
            with torch.no_grad():
                # validate=False, as a Stream calls it: the checks' device syncs would dominate both
                times = [1000 * cuda_time(lambda b=b: ops.mlstm_step(q, k, v, ig, fg, state, backend=b,
                                                                     validate=False), 200)
                         for b in ("cuda", "torch")]
            print(f"  {B:5d} {str(dt)[6:]:<9s} {times[0]:13.1f} {times[1]:13.1f} {times[1] / times[0]:7.2f}")


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


OURS, OFFICIAL, SDPA, TORCH_FORM = ("xseq chunkwise (cuda)", "official xl_chunk (triton)", "SDPA causal (flash)",
                                   "xseq chunkwise (torch)")
OURS_2L = "xseq chunkwise (cuda, two-level states)"


def time_mlstm(name, B, H, T, D, repeats):
    """(forward ms, forward+backward ms) of one mLSTM sequence implementation on fresh random bfloat16 inputs."""
    import torch.nn.functional as F

    dt = torch.bfloat16
    leaves = [torch.randn(B, H, T, D, device="cuda", dtype=dt, requires_grad=True) for _ in range(3)]
    gates = [torch.randn(B, H, T, device="cuda", dtype=dt, requires_grad=True) for _ in range(2)]
    args_ = leaves + gates
    ext = None
    if name in (OURS, OURS_2L):
        ext = cuda_ext.load("mlstm")  # raises where the build fails, rather than timing the fallback

        def run():
            return ops.mlstm(*leaves, *gates, backend="cuda")[0]
    elif name == TORCH_FORM:
        def run():
            return ops.mlstm(*leaves, *gates, backend="torch", mode="chunkwise")[0]
    elif name == OFFICIAL:
        from mlstm_kernels.torch.chunkwise import mlstm_chunkwise__xl_chunk

        def run():
            return mlstm_chunkwise__xl_chunk(*leaves, *gates, chunk_size=128)
    else:
        from torch.nn.attention import SDPBackend, sdpa_kernel

        def run():
            with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
                return F.scaled_dot_product_attention(*leaves, is_causal=True)
        args_ = leaves
    # the PyTorch form is far slower and memory-hungry: timed briefly
    repeats, warmup = (3, 1) if name == TORCH_FORM else (repeats, 2)
    if ext is not None:  # for the whole timing: the backward pass recomputes the states too
        ext.two_level_states(name == OURS_2L)
    try:
        with torch.no_grad():
            f = cuda_time(run, repeats, warmup)
        fb = cuda_time(fwd_bwd(run, args_), repeats, warmup)
    finally:
        if ext is not None:
            ext.two_level_states(False)
        leaves = gates = args_ = None  # free the device memory before the next configuration
        torch.cuda.empty_cache()
    return f, fb


def official_child(configs, repeats):
    """The official kernels in a process of their own (--official-child): their Triton build can abort the
    process (an LLVM assertion was seen with triton 3.6). Prints one XSEQ_ROW json line per configuration."""
    for T, D in configs:
        try:
            f, fb = time_mlstm(OFFICIAL, 8, 8, T, D, repeats)
            row = {"T": T, "D": D, "f": f, "fb": fb}
        except Exception as e:
            row = {"T": T, "D": D, "error": f"{type(e).__name__}: {str(e).splitlines()[0][:100]}"}
            traceback.print_exc(limit=2, file=sys.stderr)
        print("XSEQ_ROW " + json.dumps(row), flush=True)


def official_rows(configs, repeats):
    """{(T, D): row} of the official kernels, from child processes; where one aborts, the configurations left
    run again with Triton's LLVM optimisation off (DISABLE_LLVM_OPT=1), and their rows say so."""
    rows, left = {}, list(configs)
    attempts = ({}, {"DISABLE_LLVM_OPT": "1"}) if os.environ.get("DISABLE_LLVM_OPT") != "1" else \
        ({"DISABLE_LLVM_OPT": "1"},)
    for extra in attempts:
        if not left:
            break
        cmd = [sys.executable, __file__, "--repeats", str(repeats), "--official-child", *(f"{T}:{D}" for T, D in left)]
        try:
            proc = subprocess.run(cmd, env={**os.environ, **extra}, capture_output=True, text=True, timeout=200)
            out, err, rc = proc.stdout, proc.stderr, proc.returncode
        except subprocess.TimeoutExpired as e:
            out, err, rc = (e.stdout or b"").decode(), (e.stderr or b"").decode(), "timeout"
        for line in out.splitlines():
            if line.startswith("XSEQ_ROW "):
                row = json.loads(line[9:])
                row["note"] = " (LLVM opt off)" if extra else ""
                rows[(row["T"], row["D"])] = row
        sys.stderr.write(err[-3000:])
        if rc != 0:
            tail = [ln for ln in err.splitlines() if ln.strip()][-1:] or ["(no output)"]
            print(f"  the official kernels' process ended with {rc}: {tail[0][:160]}", flush=True)
        left = [c for c in left if c not in rows]
    return rows


def mlstm_sequences(args):
    peak, bw = ceilings()
    print(f"\nmLSTM sequences, B=8, H=8, bfloat16 (device ceilings measured here: bf16 matmul {peak:.0f} TFLOP/s, "
          f"copy {bw:.0f} GB/s): milliseconds (ratio = peer / ours)")
    head = (f"  {'T':>6s} {'D':>4s} {'impl':<42s} {'forward':>9s} {'fwd+bwd':>9s} {'ratio f':>8s} {'ratio fb':>8s} "
            f"{'TFLOP/s f':>9s}")
    print(head)
    B, H = 8, 8
    configs = [(T, D) for T in args.mlstm_T for D in (128, 256)]
    ours = {}

    def show(T, D, name, f, fb):
        base = ours.get((T, D))
        ratios = f"{f / base[0]:8.2f} {fb / base[1]:8.2f}" if base else f"{'-':>8s} {'-':>8s}"
        tflops = (4 * B * H * T * T / 2 * D if name.startswith("SDPA") else mlstm_flops(B, H, T, D)) / f / 1e9
        print(f"  {T:6d} {D:4d} {name:<42s} {f:9.2f} {fb:9.2f} {ratios} {tflops:9.1f}", flush=True)

    for T, D in configs:
        for name in (OURS, OURS_2L, SDPA) + (() if args.no_torch_form else (TORCH_FORM,)):
            try:
                f, fb = time_mlstm(name, B, H, T, D, args.repeats)
            except Exception as e:
                print(f"  {T:6d} {D:4d} {name:<42s} failed: {type(e).__name__}: {str(e).splitlines()[0][:100]}")
                traceback.print_exc(limit=2, file=sys.stderr)
                continue
            if name == OURS:
                ours[(T, D)] = (f, fb)
            show(T, D, name, f, fb)
    official = official_rows(configs, args.repeats)
    for T, D in configs:
        row = official.get((T, D))
        name = OFFICIAL + (row or {}).get("note", "")
        if row is None or "error" in row:
            print(f"  {T:6d} {D:4d} {name:<42s} failed: {(row or {}).get('error', 'no result')}")
        else:
            show(T, D, name, row["f"], row["fb"])


if __name__ == "__main__":
    main()
