"""torch's intra-op thread count for the duration of a call (estimators take `threads=`)."""
from __future__ import annotations

from contextlib import contextmanager

import torch


@contextmanager
def torch_threads(n: int | None):
    """Use n threads inside the block (None: leave the setting alone); restores the previous count."""
    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
