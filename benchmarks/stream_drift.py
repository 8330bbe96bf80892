"""Long streams: does a float32 stream drift from the exact answer, and does its cost stay flat?

For the encoder (XLSTMEncoder.stream) and the classifier (XLSTMClassifier.stream with its defaults: the causal
kernels' counts, and the recurrent state plus the running mean of the encoder's outputs), one sequence of
--steps observations is streamed one at a time in float32. The reference is the batch answer in float64: the
same weights cast to float64, the parallel forward run over the sequence in chunks that carry the state (exact:
the parallel face with carried state equals the whole-sequence forward), and for the classifier its kernel
counts, the running mean and the head on top (see run_classifier). Reported per
decade of steps: the largest deviation of the stream from the reference, relative to the reference's std (the
encoder) or in absolute probability (the classifier), the median time per update and the process's RSS.
The forecaster's and TiRex's streams read a fixed window at every update (nothing is carried that could
drift); tests/stream check them against predict on every prefix.
Usage: python benchmarks/stream_drift.py [--steps 1000000] [--models encoder classifier] [--chunk 10000]
"""
from __future__ import annotations

import argparse
import copy
import math
import statistics
import time

import numpy as np
import torch
from _util import rss_bytes

import xseq


def perturbed_encoder(d: int, layout: str, seed: int) -> xseq.XLSTMEncoder:
    """An encoder whose weights are moved off their init (zero R, zero gate weights), so that every part of
    the recurrence matters."""
    torch.manual_seed(seed)
    enc = xseq.XLSTMEncoder(xseq.XLSTMConfig(d_model=d, layout=layout)).eval()
    with torch.no_grad():
        for p in enc.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return enc


def signal(t0: int, n: int, d: int, seed: int) -> torch.Tensor:
    """Observations t0 .. t0 + n - 1 (n, d): noise around slow sines, reproducible chunk by chunk."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + t0)
    t = torch.arange(t0, t0 + n, dtype=torch.float64)[:, None]
    freq = torch.linspace(1e-4, 3e-2, d, dtype=torch.float64)[None, :]
    return (torch.sin(t * freq * 2 * math.pi) + 0.5 * torch.randn(n, d, generator=g, dtype=torch.float64)).float()


class Decades:
    """The worst deviation, update times and RSS per decade of steps (1-10, 11-100, ...)."""

    def __init__(self):
        self.rows = {}

    def add(self, t: int, dev: float, seconds: float):
        k = len(str(t - 1)) - 1 if t > 1 else 0  # 1-10 -> 0, 11-100 -> 1, ...
        r = self.rows.setdefault(k, {"dev": 0.0, "times": []})
        r["dev"] = max(r["dev"], dev)
        r["times"].append(seconds)
        r["rss"] = rss_bytes()

    def print(self, what: str):
        print(f"  {'steps':>17}  {what:>22}  {'median update':>13}  {'RSS':>8}")
        for k in sorted(self.rows):
            r = self.rows[k]
            lo, hi = (1 if k == 0 else 10 ** k + 1), 10 ** (k + 1)
            print(f"  {lo:>8,}-{hi:<8,}  {r['dev']:22.2e}  {statistics.median(r['times']) * 1e6:10.1f} us"
                  f"  {r['rss'] / 2**20:5.0f} MB", flush=True)


def run_encoder(steps: int, chunk: int, d: int, layout: str, seed: int) -> Decades:
    enc = perturbed_encoder(d, layout, seed)
    ref = copy.deepcopy(enc).double()
    stream = enc.stream(batch_size=1)
    out, state64 = Decades(), None
    for t0 in range(0, steps, chunk):
        n = min(chunk, steps - t0)
        x = signal(t0, n, d, seed)
        with torch.no_grad():
            y64, state64 = ref(x.double()[None], state64)
        y64 = y64[0].numpy()
        scale = float(y64.std())
        for i in range(n):
            t1 = time.perf_counter()
            y = stream.update(x[i:i + 1])
            dt = time.perf_counter() - t1
            out.add(t0 + i + 1, float(np.abs(y[0].numpy() - y64[i]).max()) / scale, dt)
    return out


def run_classifier(steps: int, chunk: int, d: int, seed: int) -> Decades:
    """The default classifier (causal kernels + xLSTM on patches) on one long sequence. The reference, chunk by
    chunk in float64: the kernel outputs over the chunk with the last window of inputs before it (the batch
    form's conv1d), their positive counts summed over all steps so far; the float64 encoder over the chunk's
    complete patches with carried state, the running mean of its outputs and the last one; both parts' logits
    added as XLSTMClassifier.predict_proba adds them."""
    rng = np.random.default_rng(seed)
    X = [rng.normal(size=(int(rng.integers(30, 60)), 3)) + (k % 2) for k in range(40)]
    y = [k % 2 for k in range(40)]
    clf = xseq.XLSTMClassifier(d_model=d, max_epochs=1, verbose=0, seed=seed).fit(X, y)
    net64 = copy.deepcopy(clf.net_).double().eval()
    P, kernels = net64.patch, net64.kernels
    chunk = max(P, chunk - chunk % P)  # chunks of whole patches
    stream = clf.stream(batch_size=1)
    out, state64 = Decades(), None
    total, last = torch.zeros(1, d, dtype=torch.float64), torch.zeros(1, d, dtype=torch.float64)
    positive, history = None, None
    for t0 in range(0, steps, chunk):
        n = min(chunk, steps - t0)
        x = signal(t0, n, 3, seed)
        t = torch.arange(t0 + 1, t0 + n + 1, dtype=torch.float64)[:, None]  # observations so far, per step
        with torch.no_grad():
            logits = torch.zeros(n, net64.n_classes, dtype=torch.float64)
            if kernels is not None:
                z = net64.scaled64(x[None])                                   # (1, n, C)
                seen = z if history is None else torch.cat([history, z], dim=1)
                hits = []
                for i, dil in enumerate(kernels.dilations):
                    o = kernels.outputs(seen, i)[0, :, -n:]                   # (K, n)
                    hits.append((o[:, None, :] > kernels.bias[i].double()[:, :, None]).reshape(-1, n))
                counts = torch.cat(hits).double().T.cumsum(0)                 # (n, features)
                counts = counts if positive is None else counts + positive
                positive, history = counts[-1:], seen[:, -(kernels.window - 1):]
                logits = logits + net64.kernel_logits_from(counts / t)
            if net64.encoder is not None:
                m = n // P
                h, state64 = net64.encoder(net64.tokens(x.double()[None]), state64)  # (1, m, d): this chunk's patches
                sums = torch.cat([total, total + torch.cumsum(h[0], 0)])          # (m + 1, d): before / after each
                lasts = torch.cat([last, h[0]])
                done = torch.div(t[:, 0].long(), P, rounding_mode="floor")        # complete patches per step
                j = done - t0 // P                                                 # 0: none completed in this chunk
                part = net64.logits_from(sums[j] / done.clamp(min=1)[:, None], lasts[j])
                logits = logits + torch.where((done > 0)[:, None], part, 0.0)
                total, last = sums[-1:], lasts[-1:]
                assert m == len(h[0])
            p64 = torch.softmax(logits, dim=-1).numpy()
        for i in range(n):
            t1 = time.perf_counter()
            p = stream.update(x[i:i + 1])
            dt = time.perf_counter() - t1
            out.add(t0 + i + 1, float(np.abs(p[0].numpy() - p64[i]).max()), dt)
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=1_000_000)
    p.add_argument("--models", nargs="+", default=["encoder", "classifier"], choices=["encoder", "classifier"])
    p.add_argument("--chunk", type=int, default=10_000, help="reference chunk (float64 forward with carried state)")
    p.add_argument("--d-model", type=int, default=32)
    p.add_argument("--layout", default="ms")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    print(f"stream drift over {args.steps:,} steps: float32 stream vs the float64 batch answer; torch "
          f"{torch.__version__}, threads={torch.get_num_threads()}")
    t0 = time.perf_counter()
    if "encoder" in args.models:
        print(f"\nXLSTMEncoder.stream, d_model={args.d_model}, layout={args.layout!r}")
        run_encoder(args.steps, args.chunk, args.d_model, args.layout, args.seed).print("max |dev| / std(ref)")
    if "classifier" in args.models:
        print(f"\nXLSTMClassifier.stream (3 channels, d_model={args.d_model}, recurrent state + running mean)")
        run_classifier(args.steps, args.chunk, args.d_model, args.seed).print("max |dev| (probability)")
    print(f"\nwall {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
