"""Training losses of the forecaster, elementwise over (N, H), on the per-series scaled values the network
works in. `shift` and `scale` undo the per-series scaling (user units = scaled * scale + shift); `mase_scale`
is each series' in-sample seasonal naive MAE in user units (the MASE denominator).

  mse, mae      squared / absolute error in scaled units
  mase          absolute error in user units / the series' naive MAE (the M4 competition's MASE)
  smape         2 |y - f| / (|y| + |f|) in user units (sMAPE / 100; 0 where both are 0)
  pinball       the quantile loss averaged over the quantile levels (every output trained at once)"""
from __future__ import annotations

import torch

LOSSES = ("mse", "mae", "mase", "smape", "pinball")


def pinball(pred: torch.Tensor, target: torch.Tensor, quantiles: torch.Tensor) -> torch.Tensor:
    """pred: (N, H, Q) in ascending quantile order; target (N, H). Elementwise (N, H), averaged over Q."""
    diff = target.unsqueeze(-1) - pred
    return torch.maximum(quantiles * diff, (quantiles - 1) * diff).mean(-1)


def elementwise(name: str, pred: torch.Tensor, target: torch.Tensor, *, median_index: int = 0,
                quantiles: torch.Tensor | None = None, shift: torch.Tensor | None = None,
                scale: torch.Tensor | None = None, mase_scale: torch.Tensor | None = None) -> torch.Tensor:
    """pred: (N, H, n_out); target (N, H); shift, scale, mase_scale: (N,) for the window's series."""
    if name == "pinball":
        return pinball(pred, target, quantiles)
    point = pred[..., median_index]
    if name == "mse":
        return (point - target) ** 2
    if name == "mae":
        return (point - target).abs()
    if name == "mase":
        return (point - target).abs() * (scale / mase_scale)[:, None]
    if name == "smape":
        y, f = target * scale[:, None] + shift[:, None], point * scale[:, None] + shift[:, None]
        denominator = y.abs() + f.abs()
        return torch.where(denominator > 0, 2 * (y - f).abs() / denominator.clamp_min(1e-12),
                           torch.zeros_like(denominator))
    raise ValueError(f"loss must be one of {LOSSES}; got {name!r}")
