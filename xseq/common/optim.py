"""AdamW parameter groups (paper D.2): weight decay on weight matrices only."""
from __future__ import annotations

from typing import Callable

from torch import nn


def optimizer_groups(model: nn.Module, weight_decay: float, *, include: Callable[[str], bool] | None = None,
                     no_decay: Callable[[str], bool] | None = None) -> list[dict]:
    """Two AdamW groups: decay on parameters of 2 or more dimensions; none on token embeddings, biases,
    norm weights and other vectors (e.g. the mLSTM skip), nor on names for which `no_decay(name)` is True.
    `include(name)` picks the parameters to train (default: all that require a gradient). Every parameter
    lands in at most one group, a shared (tied) matrix once."""
    decay, rest, seen = [], [], set()
    embeddings = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
    for name, p in model.named_parameters():
        if not p.requires_grad or id(p) in seen or (include is not None and not include(name)):
            continue
        seen.add(id(p))
        if id(p) in embeddings or p.dim() < 2 or name.endswith("bias") or (no_decay is not None and no_decay(name)):
            rest.append(p)
        else:
            decay.append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]
