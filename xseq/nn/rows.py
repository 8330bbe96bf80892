"""Row-wise selection between two batched states: the one way states are reset in xseq.

Always torch.where, never a product with (1 - mask): the mLSTM and sLSTM stabilisers m may be -inf, and
-inf * 0 is NaN."""
from __future__ import annotations

import torch
from tensordict import TensorDict


def where_rows_tensor(mask: torch.Tensor, new: torch.Tensor, old: torch.Tensor) -> torch.Tensor:
    """mask (B,) bool; new, old (B, ...). Rows where mask is True from new, the others from old (new's dtype)."""
    return torch.where(mask.view(-1, *([1] * (new.dim() - 1))), new, old.to(new.dtype))


def where_rows(mask: torch.Tensor, new: TensorDict, old: TensorDict) -> TensorDict:
    """where_rows_tensor over every leaf of two states with the same structure."""
    return new.apply(lambda a, b: where_rows_tensor(mask, a, b), old)
