"""TiRex on CPU: xseq against tirex-ts eager and tirex-ts compile=True, each through its public forecasting call
(xseq: `load_tirex(path).forecast(context, 32)` and `TiRexForecaster.predict()` on a DataFrame; tirex-ts:
`model.forecast(context, prediction_length=32)`), in one process, on the released configuration (35.3M
parameters) with random weights written here in tirex-ts's checkpoint format (nothing is downloaded; the speed
does not depend on the weights). Context 2048, 32 steps ahead, batch 1 and 32, 1 and 2 threads; the compile
wait is reported apart; then the streaming cost per new observation (TiRexForecaster.stream) at step 100 and,
on a small configuration, at steps 100 and 10,000. Usage: python benchmarks/tirex_cpu.py [--threads 1 2]
[--batches 1 32] [--repeats 3] [--no-compile]"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _util import timeit  # noqa: E402

from xseq import TiRexForecaster  # noqa: E402
from xseq.forecast.tirex import TiRexConfig, TiRexNet, load_tirex, save_tirex  # noqa: E402


def random_checkpoint(cfg: TiRexConfig, path: str, seed: int = 0) -> str:
    torch.manual_seed(seed)
    net = TiRexNet(cfg)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if "norm" in name:
                p.copy_(1 + 0.1 * torch.randn_like(p))
            else:
                p.copy_(torch.randn_like(p) / max(p.shape[-1], 1) ** 0.5)
    save_tirex(net, path)
    return path


def stream_cost(path: str, steps: list[int], threads: int) -> dict:
    """Seconds per update of a one-series stream at the given steps (mean of 5 updates around each)."""
    torch.set_num_threads(threads)
    y = pd.DataFrame({"y": np.sin(np.arange(64) / 5.0)})
    f = TiRexForecaster(path, horizon=32, progress_bar=False).fit(y)
    s = f.stream()
    rng = np.random.default_rng(0)
    out, t = {}, 0
    for target in steps:
        while t < target - 5:
            s.update(rng.standard_normal((1, 1)))
            t += 1
        t0 = time.perf_counter()
        for _ in range(5):
            s.update(rng.standard_normal((1, 1)))
            t += 1
        out[target] = (time.perf_counter() - t0) / 5
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--batches", type=int, nargs="+", default=[1, 32])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--no-compile", action="store_true", help="skip tirex-ts compile=True")
    p.add_argument("--warm-cache", action="store_true",
                   help="let torch.compile reuse its on-disk cache (default: a fresh cache, so that the compile wait "
                        "is what a first-time user waits)")
    args = p.parse_args()
    if not args.warm_cache:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="inductor-")
    try:
        from tirex.models.tirex import TiRexZero
    except ImportError:
        sys.exit("tirex-ts is not installed: pip install tirex-ts==1.4.2 (the test extra has it)")
    from tirex.models.slstm.cell import sLSTMCellTorch

    tmp = tempfile.mkdtemp()
    cfg = TiRexConfig()
    path = random_checkpoint(cfg, os.path.join(tmp, "released.ckpt"))
    ours = load_tirex(path)
    eager = TiRexZero.from_pretrained(path, backend="torch", device="cpu").eval()
    compiled = None
    if not args.no_compile:
        compiled = TiRexZero.from_pretrained(path, backend="torch", device="cpu").eval()
        fn = torch.compile(sLSTMCellTorch.slstm_forward)
        for block in compiled.blocks:
            block.slstm_layer.slstm_cell._impl_forward_torch = fn
    print(f"TiRex released configuration ({sum(p.numel() for p in ours.parameters()):,} parameters), context 2048, "
          f"32 steps ahead; torch {torch.__version__}, {os.cpu_count()} cores")
    rows = []
    for threads in args.threads:
        torch.set_num_threads(threads)
        for B in args.batches:
            ctx = torch.randn(B, 2048, generator=torch.Generator().manual_seed(B)).cumsum(-1)
            frame = pd.DataFrame(ctx.numpy().T.astype(np.float64), columns=[f"s{i}" for i in range(B)])
            estimator = TiRexForecaster(path, horizon=32, batch_size=B, threads=threads, progress_bar=False)
            estimator.fit(frame)
            t_ours = timeit(lambda: ours.forecast(ctx, 32), repeats=args.repeats)
            t_pred = timeit(estimator.predict, repeats=args.repeats)
            t_eager = timeit(lambda: eager.forecast(ctx, prediction_length=32), repeats=args.repeats)
            t_comp = wait = float("nan")
            if compiled is not None:
                t0 = time.perf_counter()
                compiled.forecast(ctx, prediction_length=32)
                wait = time.perf_counter() - t0
                t_comp = timeit(lambda: compiled.forecast(ctx, prediction_length=32), repeats=args.repeats)
            rows.append((threads, B, t_ours, t_pred, t_eager, t_comp, wait))
            print(f"threads={threads} batch={B:3d}: xseq {t_ours:7.3f} s (predict() {t_pred:7.3f} s)   "
                  f"tirex-ts eager {t_eager:7.3f} s "
                  f"({t_eager / t_ours:4.1f}x)   compile=True {t_comp:7.3f} s ({t_comp / t_ours:4.1f}x, first call "
                  f"{wait:5.1f} s)", flush=True)

    print("\n  threads  batch   xseq (s)  predict() (s)  eager (s)  compiled (s)  xseq vs eager  xseq vs compiled"
          "  predict() vs eager  compile wait (s)")
    for threads, B, a, pr, e, c, w in rows:
        print(f"  {threads:7d} {B:6d} {a:10.3f} {pr:14.3f} {e:10.3f} {c:13.3f} {e / a:13.1f}x {c / a:16.1f}x "
              f"{e / pr:18.1f}x {w:17.1f}")
    s = stream_cost(path, [100], threads=1)
    print(f"\nstream (TiRexForecaster.stream, 1 series, 32 ahead, 1 thread): {s[100] * 1e3:.1f} ms per new "
          f"observation at step 100; every update reads the fixed 2048-value window, so the cost does not grow")
    small = TiRexConfig(patch_size=16, num_blocks=2, d_model=64, num_heads=2, input_ff_dim=128, context_length=256)
    s = stream_cost(random_checkpoint(small, os.path.join(tmp, "small.ckpt")), [100, 10_000], threads=1)
    print(f"stream, small configuration (2 blocks, d 64, context 256): {s[100] * 1e3:.2f} ms per observation at "
          f"step 100, {s[10_000] * 1e3:.2f} ms at step 10,000 (ratio {s[10_000] / s[100]:.2f})")


if __name__ == "__main__":
    main()
