"""torch's intra-op thread count for the duration of a call (estimators take `threads=`)."""
from __future__ import annotations

from contextlib import contextmanager

import torch


@contextmanager
def torch_threads(n: int | None):
    """Use n threads inside the block (None: leave the setting alone); restores the previous count."""
    before = torch.get_num_threads()
    if not n or n == before:  # nothing to change (and nothing to pay on hot paths such as predict)
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
