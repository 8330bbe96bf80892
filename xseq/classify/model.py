"""The classifier network: per-channel scaling, a linear embedding of each time step, an xLSTM encoder, and
a head on [running mean of the outputs, last output] of the valid steps.

Both summaries are causal, so the prediction for a prefix is what a stream emits after its last step, and a
sequence's prediction does not depend on what it is padded with or batched beside."""
from __future__ import annotations

import torch
from torch import nn

from ..nn import XLSTMConfig, XLSTMEncoder


class ClassifierNet(nn.Module):
    def __init__(self, n_features: int, n_classes: int, encoder: XLSTMConfig, dropout: float = 0.1):
        super().__init__()
        d = encoder.d_model
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("std", torch.ones(n_features))
        self.embed = nn.Linear(n_features, d)
        self.encoder = XLSTMEncoder(encoder)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(2 * d, n_classes)

    def set_scaling(self, mean, std) -> None:
        with torch.no_grad():
            self.mean.copy_(torch.as_tensor(mean))
            self.std.copy_(torch.as_tensor(std))

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        return self.embed((x - self.mean) / self.std)

    def logits_from(self, mean_h: torch.Tensor, last_h: torch.Tensor) -> torch.Tensor:
        return self.head(self.drop(torch.cat([mean_h, last_h], dim=-1)))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """x: (B, T, C) right-padded; lengths: (B,) in [1, T]. Returns logits (B, n_classes)."""
        h, _ = self.encoder(self.tokens(x))                                   # (B, T, d)
        T = x.shape[1]
        valid = torch.arange(T, device=x.device)[None, :] < lengths[:, None]  # (B, T)
        mean_h = (h * valid.unsqueeze(-1)).sum(1) / lengths[:, None].to(h.dtype)
        last_h = h[torch.arange(len(h), device=x.device), lengths - 1]
        return self.logits_from(mean_h, last_h)
