"""The tinyshakespeare character recipe with nanoGPT's CPU budget (context 64, batch 12, 2,000 iterations,
no dropout, ~0.8M parameters), on this machine's CPU. nanoGPT's README reports validation loss 1.88 for its
GPT of that size and budget; this prints ours (the whole held-out 10%, not a 20-batch sample), the training
tokens per second and the wall time.

    python benchmarks/lm_tinyshakespeare.py [--data-dir ../shared/data] [--steps 2000]
"""
from __future__ import annotations

import argparse
import math
import os
import time
from pathlib import Path

from xseq.lm import LMRecipe, train

NANOGPT_CPU_VAL_LOSS = 1.88  # nanoGPT README, "baby GPT" on CPU: 4 layers, 4 heads, 128 wide, 2000 iters


def main():
    root = Path(__file__).resolve().parents[1]
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=os.environ.get("XSEQ_DATA_DIR", str(root.parent / "shared" / "data")))
    p.add_argument("--steps", type=int, default=None, help="stop early (the schedule still spans the recipe)")
    p.add_argument("--out-dir", default="runs/lm/bench_tinyshakespeare")
    args = p.parse_args()
    recipe = LMRecipe.from_yaml(root / "recipes" / "lm" / "tinyshakespeare_char.yaml")
    recipe = recipe.override([f"train.out_dir={args.out_dir}"])
    t0 = time.perf_counter()
    out = train(recipe, data_dir=args.data_dir, progress=False, max_steps=args.steps)
    wall = time.perf_counter() - t0
    print(f"\nxLSTM char LM on tinyshakespeare, {out['parameters'] / 1e6:.2f}M parameters, {out['steps']} steps "
          f"of 12 x 64 tokens")
    print(f"  validation loss  {out['val_loss']:.4f} nats/char (ppl {math.exp(out['val_loss']):.2f}); "
          f"nanoGPT's README: {NANOGPT_CPU_VAL_LOSS}")
    print(f"  ratio ours / nanoGPT  {out['val_loss'] / NANOGPT_CPU_VAL_LOSS:.3f}  (< 1: lower loss)")
    print(f"  training throughput  {out['tokens_per_s']:,.0f} tokens/s; wall time {wall:.0f} s "
          f"(data preparation and validation included)")


if __name__ == "__main__":
    main()
