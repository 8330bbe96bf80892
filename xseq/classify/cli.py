"""`xseq classify`: train XLSTMClassifier on a .ts training file, report the test accuracy beside a ridge
classifier on the raw values, and write the test predictions (predictions.csv) and a confusion matrix
(confusion_matrix.png) into the --out folder."""
from __future__ import annotations

import argparse
import re
import textwrap
import time
from pathlib import Path

from ..common.cli import (
    CLIError,
    OneLineParser,
    add_common_flags,
    data_file,
    dispatch,
    fail,
    fraction_or_zero,
    nonneg_int,
    positive_int,
)

DEFAULT_OUT = "outputs/classify"
NUM_HEADS = 4  # XLSTMClassifier's default, which the command line keeps


def layout(text: str) -> str:
    if not text or set(text) - {"m", "s"}:
        raise argparse.ArgumentTypeError(f"must be a string of block types, m (mLSTM) and s (sLSTM), e.g. ms or "
                                         f"mmms; got {text!r}")
    return text


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="xseq classify", description=__doc__)
    d = p.add_argument_group("data")
    d.add_argument("--train", required=True, type=ts_file, metavar="FILE",
                   help="training sequences with their labels, a .ts file (sktime/UCR format)")
    d.add_argument("--test", required=True, type=ts_file, metavar="FILE",
                   help="test sequences with their labels, a .ts file with the training file's channels")
    m = p.add_argument_group("model and training")
    m.add_argument("--epochs", type=positive_int, default=None, metavar="N",
                   help="training epochs of the xLSTM part (default: from the training set's size, length and "
                        "channels, XLSTMClassifier's rule)")
    m.add_argument("--d-model", type=positive_int, default=None, metavar="N",
                   help=f"width of the xLSTM blocks, a multiple of their {NUM_HEADS} heads (default: "
                        "XLSTMClassifier's rule)")
    m.add_argument("--layout", type=layout, default="ms",
                   help="the blocks in order, m (mLSTM) and s (sLSTM), e.g. ms or mmms (default: ms)")
    m.add_argument("--val-size", type=fraction_or_zero, default=0.0, metavar="F",
                   help="fraction of the training sequences held out for early stopping (default: 0, none)")
    m.add_argument("--seed", type=nonneg_int, default=0, help="random seed (default: 0)")
    o = p.add_argument_group("results")
    o.add_argument("--out", default=DEFAULT_OUT, metavar="DIR",
                   help=f"folder for predictions.csv and confusion_matrix.png (default: {DEFAULT_OUT})")
    add_common_flags(p)
    return p


def main(argv=None) -> float:
    """Run the command; returns the xLSTM's test accuracy. A problem with the input prints one line
    `xseq classify: error: ...` and exits with status 2 (see xseq.common.cli.dispatch)."""
    return dispatch(build_parser(), argv, run)


def run(a) -> float:
    import numpy as np

    out = Path(a.out)
    if out.exists() and not out.is_dir():
        fail("--out", f"must be a folder (it holds predictions.csv and confusion_matrix.png); {out} is a file")
    train, test = read_ts("--train", a.train), read_ts("--test", a.test)
    n_train, n_test = _channels(train.X), _channels(test.X)
    if n_train != n_test:
        fail("--test", f"{a.test.name} has {n_test} channel(s) per step, --train {a.train.name} has {n_train}")
    classes = [str(c) for c in np.unique(train.y)]
    if len(classes) < 2:
        fail("--train", f"{a.train.name} holds one class only ({classes[0]!r}); a classifier needs at least 2")
    if a.d_model is not None:
        check_d_model(a.d_model, a.layout)
    unseen = sorted(set(map(str, test.y)) - set(classes))
    print(f"{train.name}: {len(train.y)} training and {len(test.y)} test sequences, {n_train} channel(s), "
          f"classes {', '.join(classes)}")
    if unseen:
        print(f"  note: the test labels {', '.join(unseen)} do not occur in the training file; those sequences "
              f"count as errors")

    from .baselines import ridge_on_raw
    from .estimator import XLSTMClassifier

    verbose = 0 if a.quiet else 2 if a.verbose else 1
    t0 = time.perf_counter()
    try:
        clf = XLSTMClassifier(max_epochs=a.epochs, d_model=a.d_model, layout=a.layout, val_size=a.val_size,
                              seed=a.seed, num_heads=NUM_HEADS, verbose=verbose).fit(train.X, train.y)
    except ValueError as err:
        raise CLIError(api_message(str(err))) from err
    seconds = time.perf_counter() - t0
    pred = clf.predict(test.X)
    acc = float((pred == test.y).mean())
    ridge = float((ridge_on_raw(list(train.X), train.y, list(test.X)) == test.y).mean())
    print(f"test accuracy: xLSTM {acc:.4f}   ridge on raw values {ridge:.4f}   (trained in {seconds:.1f} s)")
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "predictions.csv", "w") as f:
        f.write("case,true,predicted\n")
        f.writelines(f"{i},{_csv(t)},{_csv(p)}\n" for i, (t, p) in enumerate(zip(test.y, pred)))
    labels = classes + unseen
    title = f"{train.name}: xLSTM on the {len(test.y)} test sequences, accuracy {acc:.3f} (ridge {ridge:.3f})"
    confusion_png(test.y, pred, labels, out / "confusion_matrix.png", title)
    print(f"wrote {out / 'predictions.csv'} and {out / 'confusion_matrix.png'}")
    return acc


def check_d_model(d_model: int, layout: str) -> None:
    """--d-model against the blocks' heads, with the nearest widths that fit."""
    from ..nn import XLSTMConfig

    def fits(d: int) -> bool:
        try:
            XLSTMConfig(d_model=d, layout=layout, mlstm=dict(num_heads=NUM_HEADS), slstm=dict(num_heads=NUM_HEADS))
        except ValueError:
            return False
        return True

    if fits(d_model):
        return
    below = next((d for d in range(d_model - 1, 0, -1) if fits(d)), None)
    above = next(d for d in range(d_model + 1, 2 * d_model + 64) if fits(d))
    near = f"{below} or {above}" if below else str(above)
    fail("--d-model", f"{d_model} does not split into the {NUM_HEADS} heads of the {layout!r} blocks; try {near}")


def ts_file(text: str) -> Path:
    """A .ts file as given, or by name in the data folder ($XSEQ_DATA_DIR/ucr/NAME/NAME_TRAIN.ts)."""
    from ..datasets import data_path

    try:
        p = data_path(text)
    except FileNotFoundError:
        raise argparse.ArgumentTypeError(f"no such file: {text} (nor under $XSEQ_DATA_DIR/ucr/)") from None
    return data_file(str(p))


def read_ts(flag: str, path: Path):
    from ..datasets import load_ts

    try:
        data = load_ts(path)
    except UnicodeDecodeError as err:
        fail(flag, f"{path.name} is not a .ts text file ({err.reason})")
    except (ValueError, OSError) as err:
        fail(flag, str(err).replace(str(path), path.name, 1))
    if data.y is None:
        fail(flag, f"{path.name} has no class labels (@classLabel false): the command needs them")
    return data


def api_message(msg: str) -> str:
    """The Python API's message in the command line's words (its parameter names as flags)."""
    msg = re.sub(r"^y has one class only", "--train holds one class only", msg)
    msg = re.sub(r"\bval_size=", "--val-size ", msg)
    msg = re.sub(r"^val_size\b", "--val-size", msg)
    msg = re.sub(r"^d_model\b", "--d-model", msg)
    msg = re.sub(r"^max_epochs\b", "--epochs", msg)
    msg = re.sub(r"^X\[(\d+)\]", r"--train sequence \1", msg)
    return msg


def _channels(X) -> int:
    return X.shape[-1] if hasattr(X, "shape") else X[0].shape[-1]


def _csv(value) -> str:
    text = str(value)
    return f'"{text}"' if any(c in text for c in ',"\n') else text


def confusion_png(y_true, y_pred, classes, path: Path, title: str) -> None:
    """Counts (rows: true class, columns: predicted), each cell also as a share of its row."""
    import numpy as np
    from sklearn.metrics import confusion_matrix

    from ..common.plots import figure

    y_true, y_pred = np.asarray(y_true).astype(str), np.asarray(y_pred).astype(str)
    cm = confusion_matrix(y_true, y_pred, labels=classes)
    k = len(classes)
    cell = 0.55 if k > 6 else 0.8
    width = max(5.0, 1.8 + cell * k)
    title = "\n".join(textwrap.wrap(title, max(30, int(width * 9))))
    size = (width, max(4.0, 1.4 + cell * k + 0.2 * title.count("\n")))
    with figure(path, title, "predicted class", "true class", size=size, dpi=120) as (_, ax):
        im = ax.imshow(cm, cmap="Blues", vmin=0)
        ax.set_xticks(range(k), classes, rotation=45 if max(map(len, classes)) > 3 else 0,
                      ha="right" if max(map(len, classes)) > 3 else "center")
        ax.set_yticks(range(k), classes)
        rows = cm.sum(axis=1, keepdims=True)
        for i in range(k):
            for j in range(k):
                share = f"\n{cm[i, j] / rows[i, 0]:.0%}" if cm[i, j] and k <= 10 else ""
                ax.text(j, i, f"{cm[i, j]}{share}", ha="center", va="center", fontsize=9 if k <= 10 else 7,
                        color="white" if cm[i, j] > cm.max() / 2 else "black")
        ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="test sequences")
