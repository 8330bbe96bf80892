"""`xseq classify`: train XLSTMClassifier on a .ts training file, report test accuracy beside a ridge
classifier on the raw values, and write a confusion-matrix PNG."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from ..common.plots import figure
from ..datasets import load_ts
from .baselines import ridge_on_raw
from .estimator import XLSTMClassifier


def parse(argv=None):
    p = argparse.ArgumentParser(prog="xseq classify", description=__doc__)
    p.add_argument("--train", required=True, help="training .ts file")
    p.add_argument("--test", required=True, help="test .ts file")
    p.add_argument("--epochs", type=int, default=200)
    p.add_argument("--d-model", type=int, default=64)
    p.add_argument("--layout", default="ms")
    p.add_argument("--val-size", type=float, default=0.0, help="fraction held out for early stopping (0: none)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="outputs", help="folder for confusion_matrix.png")
    return p.parse_args(argv)


def confusion_png(y_true, y_pred, classes, path: Path, title: str) -> None:
    from sklearn.metrics import confusion_matrix

    cm = confusion_matrix(y_true, y_pred, labels=classes)
    size = (1.2 + 0.6 * len(classes), 1 + 0.6 * len(classes))
    with figure(path, title, "predicted", "true", size=size, dpi=120) as (_, ax):
        ax.imshow(cm, cmap="Blues")
        ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
        ax.set_yticks(range(len(classes)), classes)
        for i in range(len(classes)):
            for j in range(len(classes)):
                ax.text(j, i, cm[i, j], ha="center", va="center",
                        color="white" if cm[i, j] > cm.max() / 2 else "black")


def main(argv=None) -> None:
    a = parse(argv)
    train, test = load_ts(a.train), load_ts(a.test)
    print(f"{train.name}: {len(train.y)} training and {len(test.y)} test sequences, classes {list(np.unique(train.y))}")
    t0 = time.perf_counter()
    clf = XLSTMClassifier(max_epochs=a.epochs, d_model=a.d_model, layout=a.layout, val_size=a.val_size,
                          seed=a.seed).fit(train.X, train.y)
    seconds = time.perf_counter() - t0
    pred = clf.predict(test.X)
    acc = float((pred == test.y).mean())
    ridge = float((ridge_on_raw(list(train.X), train.y, list(test.X)) == test.y).mean())
    print(f"test accuracy: xLSTM {acc:.4f}   ridge on raw values {ridge:.4f}   (trained in {seconds:.1f} s)")
    path = Path(a.out) / "confusion_matrix.png"
    confusion_png(test.y, pred, list(clf.classes_), path, f"{train.name}: accuracy {acc:.3f}")
    print(f"wrote {path}")
