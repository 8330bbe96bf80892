"""Fine-tuning a TiRex checkpoint on ETTh1 (standard protocol, H=96), where NX-AI's weights are out of reach:
a small TiRex is first pretrained here on the M4 Weekly training series (a stand-in for a pretrained
checkpoint, saved in tirex-ts's format), then loaded by TiRexForecaster and (a) used zero-shot, (b) fine-tuned on
ETTh1's training months with its validation months for early stopping. Prints the validation loss before and
after, the epoch kept, and the test MSE/MAE of both beside the closed-form linear baseline; checks that the
fine-tuned forecaster saves and loads. Pass --checkpoint to fine-tune a real TiRex checkpoint instead.

Usage: python benchmarks/tirex_finetune_ett.py [--checkpoint model.ckpt] [--pretrain-epochs 3] [--epochs 3]
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
import torch

from xseq import TiRexForecaster
from xseq.datasets import data_path, ett_protocol, load_ett, load_m4
from xseq.forecast.baselines import fit_centred_linear, predict_centred_linear, windows
from xseq.forecast.tirex import TiRexConfig, TiRexNet, save_tirex

H = 96


def pretrain_on_m4(data_dir, epochs: int, path: str) -> str:
    cfg = TiRexConfig(patch_size=32, num_blocks=3, d_model=96, num_heads=3, input_ff_dim=192, context_length=512)
    torch.manual_seed(0)
    net = TiRexNet(cfg)
    with torch.no_grad():
        for name, p in net.named_parameters():
            p.copy_(torch.ones_like(p) if "norm" in name else torch.randn_like(p) / max(p.shape[-1], 1) ** 0.5 * 0.5)
    save_tirex(net, path)
    m4 = load_m4("Weekly", data_dir)
    t0 = time.perf_counter()
    f = TiRexForecaster(path, horizon=32, max_epochs=epochs, learning_rate=1e-3, batch_size=32,
                        max_train_windows=4096, val_size=32, progress_bar=False).fit(m4.train)
    save_tirex(f.net_, path)
    print(f"pretrained a {sum(p.numel() for p in f.net_.parameters()):,}-parameter TiRex on M4 Weekly in "
          f"{(time.perf_counter() - t0) / 60:.1f} min (validation pinball {f.initial_val_loss_:.4f} -> "
          f"{f.best_val_loss_:.4f})", flush=True)
    return path


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", help="a TiRex checkpoint to fine-tune (default: pretrain a small one on M4)")
    p.add_argument("--data-dir", default=os.environ.get("XSEQ_DATA_DIR", os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data")))
    p.add_argument("--pretrain-epochs", type=int, default=3)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--test-stride", type=int, default=8, help="every k-th test window (1: all 2,785)")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    tmp = tempfile.mkdtemp()
    ckpt = args.checkpoint or pretrain_on_m4(args.data_dir, args.pretrain_epochs, os.path.join(tmp, "m4.ckpt"))
    frame = load_ett(data_path("ett/ETTh1.csv", args.data_dir))
    L = 512
    split = ett_protocol(frame, L)
    V = split.frame.to_numpy().T
    test_origins = split.origins("test", H)[::args.test_stride]
    past, future = windows(V, test_origins, L, H)
    W = fit_centred_linear(V, split.origins("train", H), L, H)
    lin = predict_centred_linear(past, W)
    # the test windows of the benchmark: origins test_origins; cross_validate takes them from the end
    y = split.frame.iloc[:test_origins[-1] + H]
    n_test = len(test_origins)
    assert (np.diff(test_origins) == args.test_stride).all()

    zero = TiRexForecaster(ckpt, horizon=H, progress_bar=False).fit(split.frame.iloc[:split.val_end])
    t0 = time.perf_counter()
    tuned = TiRexForecaster(ckpt, horizon=H, max_epochs=args.epochs, learning_rate=3e-4, batch_size=32,
                            max_train_windows=2048, val_size=split.val_end - split.train_end,
                            progress_bar=False).fit(split.frame.iloc[:split.val_end])
    tune_s = time.perf_counter() - t0
    bt = lambda m: m.cross_validate(y, n_windows=n_test, step=args.test_stride, return_forecasts=False).metrics
    z, tuned_scores = bt(zero).loc["all"], bt(tuned).loc["all"]
    path = os.path.join(tmp, "tuned.pt")
    tuned.save(path)
    again = TiRexForecaster.load(path)
    same = np.allclose(again.predict().to_numpy(), tuned.predict().to_numpy())
    print(f"\nETTh1, H={H}, {n_test} test windows (every {args.test_stride}th), normalised units")
    print(f"  fine-tuning: {tuned.n_epochs_} epochs in {tune_s / 60:.1f} min; validation pinball "
          f"{tuned.initial_val_loss_:.4f} (loaded weights) -> {tuned.best_val_loss_:.4f} (best epoch "
          f"{tuned.best_epoch_}; -1 = the loaded weights kept)")
    print(f"  {'':28s} {'MSE':>7s} {'MAE':>7s}")
    print(f"  {'TiRex zero-shot':28s} {z['mse']:7.3f} {z['mae']:7.3f}")
    print(f"  {'TiRex fine-tuned':28s} {tuned_scores['mse']:7.3f} {tuned_scores['mae']:7.3f}")
    print(f"  {'closed-form linear (L=512)':28s} {float(((lin - future) ** 2).mean()):7.3f} "
          f"{float(np.abs(lin - future).mean()):7.3f}")
    print(f"  saved and loaded: forecasts equal: {same}")


if __name__ == "__main__":
    main()
