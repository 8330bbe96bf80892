"""Learning-rate schedules, as factors of the peak rate for torch's LambdaLR (or torch's own OneCycleLR).

  warmup_cosine   linear warm-up over `warmup` steps, then cosine decay to `min_ratio` of the peak at `total`
                  (the LM recipe, paper D.2; and the estimators' schedule for runs too short for OneCycleLR)
  one_cycle       the estimators' scheduler: torch's OneCycleLR (warm-up over the first 10% of the steps
                  from max_lr / 25, then cosine annealing); under MIN_ONE_CYCLE_STEPS steps (OneCycleLR
                  divides by zero near 10) warmup_cosine with 10% warm-up, which is defined for any count"""
from __future__ import annotations

import math

import torch

MIN_ONE_CYCLE_STEPS = 20


def warmup_cosine(step: int, warmup: int, total: int, min_ratio: float = 0.0) -> float:
    """The factor of the peak rate at `step` (0-based)."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def one_cycle(optimizer: torch.optim.Optimizer, max_lr: float, total_steps: int):
    total = max(1, int(total_steps))
    if total >= MIN_ONE_CYCLE_STEPS:
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=max_lr, total_steps=total, pct_start=0.1)
    warm = max(1, int(0.1 * total))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: warmup_cosine(s, warm, total))
