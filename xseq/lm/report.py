"""The outputs of a training run from its loss history ({"train": [(step, loss)], "val": [(step, loss)]}):
the learning-curve PNG and curve.csv."""
from __future__ import annotations

import csv
from pathlib import Path

from ..common.plots import learning_curve


def plot_curve(history: dict, path: Path, title: str) -> None:
    curves = []
    if history["train"]:
        curves.append(dict(zip(("x", "y"), zip(*history["train"])), label="train (per step)"))
    if history["val"]:
        curves.append(dict(zip(("x", "y"), zip(*history["val"])), label="validation", style="points"))
    learning_curve(path, curves, title, "optimizer step", "cross-entropy (nats/token)")


def write_history(history: dict, path: Path) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["step", "split", "loss"])
        for split in ("train", "val"):
            for step, loss in history[split]:
                w.writerow([step, split, f"{loss:.6f}"])
