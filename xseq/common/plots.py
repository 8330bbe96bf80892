"""PNG figures: one way to open, label and write a matplotlib figure (the Agg backend, no display needed),
and the learning curve that the training applications draw."""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Sequence


@contextmanager
def figure(path, title: str = "", xlabel: str = "", ylabel: str = "", size=(7, 4), dpi: int = 110,
           legend: bool | str = False, **subplots):
    """with figure(path, ...) as (fig, ax): draw on ax; on leaving, the labels, a legend (legend=True, or a
    matplotlib loc string; placed outside the axes with "outside"), tight layout, and a PNG at path."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=size, **subplots)
    try:
        yield fig, ax
        first = ax.flat[0] if hasattr(ax, "flat") else ax
        if xlabel:
            first.set_xlabel(xlabel)
        if ylabel:
            first.set_ylabel(ylabel)
        if title:
            first.set_title(title)
        if legend == "outside":
            first.legend(loc="center left", bbox_to_anchor=(1.01, 0.5))
        elif legend:
            first.legend(loc="best" if legend is True else legend)
        fig.tight_layout()
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=dpi)
    finally:
        plt.close(fig)


def learning_curve(path, curves: Sequence[dict], title: str, xlabel: str, ylabel: str) -> None:
    """curves: dicts with x, y, label and optionally yerr (drawn as error bars) and style ("line", the
    default, a thin translucent line for noisy per-step values, or "points", markers joined by a line)."""
    with figure(path, title, xlabel, ylabel, legend=True) as (_, ax):
        for c in curves:
            if not len(c["x"]):
                continue
            if c.get("yerr") is not None:
                ax.errorbar(c["x"], c["y"], c["yerr"], fmt="o-", ms=3, capsize=2, label=c["label"])
            elif c.get("style") == "points":
                ax.plot(c["x"], c["y"], "o-", ms=3, label=c["label"])
            else:
                ax.plot(c["x"], c["y"], lw=0.8, alpha=0.7, label=c["label"])
