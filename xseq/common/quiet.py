"""How much the estimators print while Lightning trains them, by scikit-learn's `verbose` convention:

  0 (or False)  nothing at all
  1 (or True)   the progress bar only (where the estimator's progress_bar is on)
  2             also Lightning's own messages (its "GPU available" banners, tips, and every warning)

  check_verbose(v)        the level as an int; a ValueError naming the accepted values otherwise
  show_progress(v, bar)   whether Lightning's progress bar is on (level >= 1 and the bar asked for)
  quiet_lightning(v)      a context manager around Trainer construction, fit and predict: below level 2 it
                          lowers the Lightning loggers to errors and ignores the known-harmless warnings
                          (HARMLESS), and it restores both on the way out
"""
from __future__ import annotations

import logging
import warnings
from contextlib import contextmanager

LOGGERS = ("lightning.pytorch", "lightning.fabric", "lightning_utilities", "pytorch_lightning", "lightning_fabric")

# Warnings that say nothing about the user's data or settings (regular expressions, matched at the start of the
# message). Anything else still reaches the user at every level.
HARMLESS = (
    # the windows live in memory and are gathered in the main process; worker processes would only add overhead
    r".*does not have many workers",
    # Lightning's own use of a torch.utils._pytree name that torch has deprecated
    r".*isinstance\(treespec, LeafSpec\)` is deprecated",
    # the LM's windows of one process, counted right
    r".*`IterableDataset` has `__len__` defined",
    # a resumed run writes its checkpoints where it wrote before
    r".*Checkpoint directory .* exists and is not empty",
)


def check_verbose(verbose) -> int:
    """The verbosity level 0, 1 or 2 (True is 1, False 0; anything above 2 reads as 2)."""
    if isinstance(verbose, bool):
        return int(verbose)
    try:
        level = int(verbose)
    except (TypeError, ValueError):
        level = -1
    if level != verbose or level < 0:
        raise ValueError(f"verbose must be 0 (silent), 1 (progress bar) or 2 (also Lightning's messages), "
                         f"or a bool; got {verbose!r}")
    return min(level, 2)


def show_progress(verbose, progress_bar: bool = True) -> bool:
    return bool(progress_bar) and check_verbose(verbose) >= 1


@contextmanager
def quiet_lightning(verbose=1):
    """Below level 2: Lightning's loggers only pass errors, and the HARMLESS warnings are ignored, for the
    duration of the block (the loggers' levels and the warning filters are restored afterwards)."""
    if check_verbose(verbose) >= 2:
        yield
        return
    loggers = [logging.getLogger(name) for name in LOGGERS]
    levels = [log.level for log in loggers]
    with warnings.catch_warnings():
        for pattern in HARMLESS:
            warnings.filterwarnings("ignore", message=pattern)
        for log in loggers:
            log.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for log, level in zip(loggers, levels):
                log.setLevel(level)
