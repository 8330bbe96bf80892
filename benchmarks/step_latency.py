"""The public step: `XLSTMEncoder.step(x, state)` (with its input and state checks) against a stack of
torch.nn.LSTMCell of about the same parameter count, one observation at a time, same process, same inputs.

Both run as a user streams: eval mode under torch.inference_mode(); a second table runs them with autograd
on (parameters requiring grad, no inference mode), where xseq takes its PyTorch step. The ratio is xLSTM /
LSTMCell (lower is better for xLSTM). The sizes we keep: d_model 128, layout "mmsm" (4 blocks), batch 1.
Usage: python benchmarks/step_latency.py [--d-model 128] [--layout mmsm] [--batch 1 8] [--repeats 2000]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
from stream_latency import matching_lstm, n_params

import xseq


def per_call(fn, xs, repeats: int) -> float:
    """Median seconds per call over `repeats` calls (after 200 warm-up calls), in 10 timed slices."""
    for t in range(200):
        fn(xs[t % len(xs)])
    slices = []
    per = max(1, repeats // 10)
    for s in range(10):
        t0 = time.perf_counter()
        for t in range(per):
            fn(xs[(s * per + t) % len(xs)])
        slices.append((time.perf_counter() - t0) / per)
    return statistics.median(slices)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--d-model", type=int, default=128)
    p.add_argument("--layout", default="mmsm")
    p.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    p.add_argument("--repeats", type=int, default=2000)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    enc = xseq.XLSTMEncoder(xseq.XLSTMConfig(d_model=args.d_model, layout=args.layout)).eval()
    lstm = matching_lstm(args.d_model, n_params(enc), len(args.layout)).eval()
    print(f"XLSTMEncoder.step: d_model={args.d_model} layout={args.layout!r} ({n_params(enc):,} params) vs "
          f"{len(lstm.cells)} x LSTMCell({lstm.cells[0].hidden_size}) ({n_params(lstm):,} params); "
          f"torch {torch.__version__}, threads={torch.get_num_threads()}")
    print(f"  {'mode':<16} {'batch':>5}  {'XLSTMEncoder.step':>17}  {'LSTMCell stack':>14}  {'ratio':>6}")
    for mode in ("inference_mode", "autograd"):
        for B in args.batch:
            xs = torch.randn(64, B, args.d_model)
            ours, peer = [enc.init_state(B)], [lstm.init_state(B, "cpu")]

            def ours_step(x):
                y, ours[0] = enc.step(x, ours[0])
                return y

            def peer_step(x):
                y, peer[0] = lstm.step(x, peer[0])
                return y

            ctx = torch.inference_mode if mode == "inference_mode" else torch.enable_grad
            with ctx():
                if mode == "autograd":  # no graph may grow over the run: detach the carried state each call
                    def ours_step(x):  # noqa: F811
                        y, s = enc.step(x, ours[0])
                        ours[0] = s.detach()
                        return y

                    def peer_step(x):  # noqa: F811
                        y, s = lstm.step(x, peer[0])
                        peer[0] = [(h.detach(), c.detach()) for h, c in s]
                        return y
                a = per_call(ours_step, xs, args.repeats // (1 if mode == "inference_mode" else 4))
                b = per_call(peer_step, xs, args.repeats // (1 if mode == "inference_mode" else 4))
            print(f"  {mode:<16} {B:>5}  {a * 1e6:14.1f} us  {b * 1e6:11.1f} us  {a / b:6.2f}", flush=True)


if __name__ == "__main__":
    main()
