"""The learning-rate schedule of the estimators: torch's OneCycleLR (warm-up over the first 10% of the
steps from max_lr / 25, then cosine annealing), and for runs too short for it (OneCycleLR divides by zero
near 10 steps) a linear warm-up plus cosine decay that is defined for any number of steps."""
from __future__ import annotations

import math

import torch

MIN_ONE_CYCLE_STEPS = 20


def one_cycle(optimizer: torch.optim.Optimizer, max_lr: float, total_steps: int):
    total = max(1, int(total_steps))
    if total >= MIN_ONE_CYCLE_STEPS:
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=max_lr, total_steps=total, pct_start=0.1)
    warm = max(1, int(0.1 * total))

    def factor(step: int) -> float:
        return min(1.0, (step + 1) / warm) * 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
