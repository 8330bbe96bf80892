"""Streaming: per-update latency and process memory of an xLSTM encoder stream over a long run, side by
side with a torch.nn.LSTMCell stack of about the same parameter count (same process, same inputs).

At each checkpoint (100, 1,000, 10,000, 100,000 updates by default) it times `--window` updates and reads
the process's resident memory; flat figures from the first checkpoint to the last mean constant time and
memory per observation. The ratio is xLSTM latency / LSTMCell latency (lower is better for xLSTM).
Usage: python benchmarks/stream_latency.py [--steps 100 1000 10000 100000] [--batch 1 256] [--device cpu]
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
from _util import rss_bytes
from torch import nn

import xseq


class LSTMCellStack(nn.Module):
    """The peer: a stack of nn.LSTMCell with a step(x, state) interface."""

    def __init__(self, d_in: int, hidden: int, layers: int):
        super().__init__()
        self.cells = nn.ModuleList(nn.LSTMCell(d_in if i == 0 else hidden, hidden) for i in range(layers))

    def step(self, x, state):
        new = []
        for cell, (h, c) in zip(self.cells, state):
            h, c = cell(x, (h, c))
            new.append((h, c))
            x = h
        return x, new

    def init_state(self, batch, device):
        hid = self.cells[0].hidden_size
        return [(torch.zeros(batch, hid, device=device), torch.zeros(batch, hid, device=device)) for _ in self.cells]


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def matching_lstm(d_model: int, target: int, layers: int) -> LSTMCellStack:
    """The hidden size whose stack of `layers` LSTMCells (input d_model) is closest to `target` parameters."""
    best = min(range(8, 2048, 8), key=lambda h: abs(n_params(LSTMCellStack(d_model, h, layers)) - target))
    return LSTMCellStack(d_model, best, layers)


def run(update, xs, checkpoints, window, sync):
    """Feeds xs[t % len(xs)] for checkpoints[-1] updates; at each checkpoint times the next `window` updates
    (median per update) and reads RSS. Returns [(step, seconds per update, RSS bytes)]."""
    out, t, ci = [], 0, 0
    n = len(xs)
    while ci < len(checkpoints):
        if t == checkpoints[ci]:
            times = []
            for _ in range(window):
                t0 = time.perf_counter()
                update(xs[t % n])
                sync()
                times.append(time.perf_counter() - t0)
                t += 1
            out.append((checkpoints[ci], statistics.median(times), rss_bytes()))
            ci += 1
        else:
            update(xs[t % n])
            t += 1
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, nargs="+", default=[100, 1000, 10000, 100000])
    p.add_argument("--batch", type=int, nargs="+", default=[1, 256])
    p.add_argument("--d-model", type=int, default=64)
    p.add_argument("--layout", default="ms")
    p.add_argument("--window", type=int, default=200, help="updates timed at each checkpoint")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    torch.manual_seed(0)
    enc = xseq.XLSTMEncoder(xseq.XLSTMConfig(d_model=args.d_model, layout=args.layout)).to(device).eval()
    lstm = matching_lstm(args.d_model, n_params(enc), len(args.layout)).to(device).eval()
    print(f"stream latency: xLSTM encoder d_model={args.d_model} layout={args.layout!r} ({n_params(enc):,} params) vs "
          f"{len(lstm.cells)} x LSTMCell(hidden={lstm.cells[0].hidden_size}) ({n_params(lstm):,} params)")
    print(f"torch {torch.__version__}, device {device}, threads={torch.get_num_threads()}, "
          f"{args.window} updates timed at each checkpoint (median)")
    steps = sorted(set(args.steps))
    for B in args.batch:
        xs = torch.randn(1000, B, args.d_model, device=device)
        stream = enc.stream(batch_size=B, device=device)
        ours = run(stream.update, xs, steps, args.window, sync)

        state = [lstm.init_state(B, device)]

        def lstm_update(x):
            with torch.inference_mode():
                y, state[0] = lstm.step(x, state[0])
            return y

        peer = run(lstm_update, xs, steps, args.window, sync)
        print(f"\nbatch {B}")
        print(f"  {'step':>8}  {'xLSTM stream':>14}  {'LSTMCell stack':>14}  {'ratio':>6}  {'process RSS':>11}")
        for (s, a, rss), (_, b, _) in zip(ours, peer):
            print(f"  {s:>8}  {a * 1e6:11.1f} us  {b * 1e6:11.1f} us  {a / b:6.1f}  {rss / 2**20:8.0f} MB", flush=True)
        first, last = ours[0], ours[-1]
        print(f"  xLSTM from step {first[0]} to {last[0]}: latency x{last[1] / first[1]:.2f}, "
              f"RSS {(last[2] - first[2]) / 2**20:+.1f} MB")


if __name__ == "__main__":
    main()
