"""Perplexity on held-out tokens at chosen context lengths (the paper's length-extrapolation test, Figure 2):
the tokens are cut into non-overlapping windows of each length and every token of every window is scored."""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from .data import gather
from .model import XLSTMLM


@torch.no_grad()
def perplexity(model: XLSTMLM, tokens: np.ndarray, context: int, batch_size: int = 8,
               max_windows: int | None = None, device=None, progress: bool = False) -> dict:
    """Mean next-token cross-entropy (nats) and perplexity over floor((N - 1) / context) windows."""
    if not isinstance(context, int) or context < 1:
        raise ValueError(f"context must be a positive int; got {context!r}")
    n_windows = (len(tokens) - 1) // context
    if max_windows is not None:
        n_windows = min(n_windows, max_windows)
    if n_windows < 1:
        raise ValueError(f"{len(tokens)} tokens hold no window of context {context} (+1 target token)")
    device = device or next(model.parameters()).device
    total, count = 0.0, 0
    starts = range(0, n_windows, batch_size)
    if progress:
        from tqdm import tqdm
        starts = tqdm(starts, desc=f"eval ctx {context}", unit="batch")
    for s in starts:
        offsets = np.arange(s, min(s + batch_size, n_windows)) * context
        x, y = gather(tokens, offsets, context)
        logits, _ = model(x.to(device), validate=False)
        loss = F.cross_entropy(logits.float().flatten(0, 1), y.to(device).flatten(), reduction="sum")
        total += float(loss)
        count += y.numel()
    nll = total / count
    return {"context": context, "windows": n_windows, "tokens": count, "loss": nll, "ppl": math.exp(nll)}
