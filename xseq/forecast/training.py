"""Lightning pieces of the forecaster: window batches gathered from one flat tensor, the LightningModule,
and a callback that keeps the best weights seen on validation (the initial, linear-only network included)."""
from __future__ import annotations

import copy

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from .._schedule import one_cycle
from .model import ForecastNet


class WindowData:
    """All series concatenated into one (sum T_i,) tensor. A window is addressed by the flat index of its
    first past value; gather() builds a batch without any per-sample Python."""

    def __init__(self, values: np.ndarray, covariates: np.ndarray | None, lookback: int, horizon: int,
                 cross: int = 0, series_len: int | None = None, n_series: int = 1):
        """cross > 0: also gather the last `cross` past values of every series at the same time steps (the
        series must be aligned: n_series series of series_len steps each, one after the other)."""
        self.values = torch.as_tensor(values, dtype=torch.float32)
        self.covariates = None if covariates is None else torch.as_tensor(covariates, dtype=torch.float32)
        self.lookback, self.horizon = lookback, horizon
        self.cross, self.series_len, self.n_series = cross, series_len, n_series
        self.offsets = torch.arange(lookback + horizon)

    def to(self, device):
        self.values = self.values.to(device)
        self.offsets = self.offsets.to(device)
        if self.covariates is not None:
            self.covariates = self.covariates.to(device)
        return self

    def gather(self, starts: torch.Tensor):
        """Returns past (N, L), future (N, H), past and future covariates (or None), cross (N, S*K) or None."""
        starts = starts.to(self.values.device)
        idx = starts[:, None] + self.offsets
        window = self.values[idx]
        past, future = window[:, :self.lookback], window[:, self.lookback:]
        cross = None
        if self.cross:
            t_end = starts % self.series_len + self.lookback  # the window's origin, per series
            steps = t_end[:, None] + torch.arange(-self.cross, 0, device=starts.device)
            series = torch.arange(self.n_series, device=starts.device) * self.series_len
            cross = centre_blocks(self.values[series[None, :, None] + steps[:, None, :]])
        if self.covariates is None:
            return past, future, None, None, cross
        cov = self.covariates[idx]
        return past, future, cov[:, :self.lookback], cov[:, self.lookback:], cross


def centre_blocks(blocks: torch.Tensor) -> torch.Tensor:
    """(N, S, K) recent values of S series -> (N, S*K), each series' block minus its own mean."""
    return (blocks - blocks.mean(dim=-1, keepdim=True)).flatten(1)


def pinball(pred: torch.Tensor, target: torch.Tensor, quantiles: torch.Tensor) -> torch.Tensor:
    """pred: (N, H, Q) in ascending quantile order; target (N, H)."""
    diff = target.unsqueeze(-1) - pred
    return torch.maximum(quantiles * diff, (quantiles - 1) * diff).mean()


class ForecastModule(L.LightningModule):
    def __init__(self, net: ForecastNet, data: WindowData, *, loss: str, learning_rate: float,
                 weight_decay: float, max_epochs: int, steps_per_epoch: int, quantile_stage: bool = False):
        """quantile_stage: train only the quantile head with the pinball loss (the point forecast is frozen)."""
        super().__init__()
        self.net, self.data, self.quantile_stage = net, data, quantile_stage
        self.loss_name, self.lr, self.weight_decay = loss, learning_rate, weight_decay
        self.total_steps = max(1, max_epochs * steps_per_epoch)
        self.register_buffer("q", torch.tensor(net.quantiles or [0.5]), persistent=False)

    def on_fit_start(self):
        self.data.to(self.device)

    def on_validation_start(self):
        self.data.to(self.device)

    def _forward(self, batch):
        past, future, past_cov, future_cov, cross = self.data.gather(batch[0])
        return self.net(past, past_cov, future_cov, cross), future

    def objective(self, pred, target):
        """The training loss: MSE or MAE of the point forecast; in the quantile stage, the pinball loss."""
        if self.quantile_stage:
            return pinball(pred, target, self.q)
        point = pred[..., self.net.median_index]
        if self.loss_name == "mae":
            return (point - target).abs().mean()
        return ((point - target) ** 2).mean()

    def training_step(self, batch, _):
        pred, target = self._forward(batch)
        loss = self.objective(pred, target)
        self.log("train_loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch, _):
        """val_loss (the training objective, which early stopping and KeepBest monitor), val_mse, val_mae."""
        pred, target = self._forward(batch)
        point = pred[..., self.net.median_index]
        n = len(target)
        self.log("val_loss", self.objective(pred, target), prog_bar=True, batch_size=n)
        self.log("val_mse", ((point - target) ** 2).mean(), batch_size=n)
        self.log("val_mae", (point - target).abs().mean(), batch_size=n)

    def configure_optimizers(self):
        if self.quantile_stage:
            params = [(n, p) for n, p in self.net.named_parameters() if n.startswith("quantile_head")]
        else:
            params = [(n, p) for n, p in self.net.named_parameters() if not n.startswith("quantile_head")]
        decay = [p for n, p in params if p.dim() >= 2 and not n.startswith("skip")]
        no_decay = [p for n, p in params if p.dim() < 2 or n.startswith("skip")]
        opt = torch.optim.AdamW([{"params": decay, "weight_decay": self.weight_decay},
                                 {"params": no_decay, "weight_decay": 0.0}], lr=self.lr)
        sched = one_cycle(opt, self.lr, self.total_steps)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


class KeepBest(L.Callback):
    """Keeps a copy of the network's weights at its best validation score (lower is better). Seeded with the
    untrained network's score so that training can only improve on the linear path, as judged on validation."""

    def __init__(self, monitor: str, initial_score: float, initial_state: dict):
        self.monitor, self.best_score, self.best_state, self.best_epoch = monitor, initial_score, initial_state, -1

    def on_validation_end(self, trainer, module):
        if trainer.sanity_checking:
            return
        score = trainer.callback_metrics.get(self.monitor)
        if score is not None and float(score) < self.best_score:
            self.best_score, self.best_epoch = float(score), trainer.current_epoch
            self.best_state = copy.deepcopy(module.net.state_dict())


def loader(starts: np.ndarray, batch_size: int, shuffle: bool, seed: int = 0) -> DataLoader:
    g = torch.Generator().manual_seed(seed)
    return DataLoader(TensorDataset(torch.as_tensor(starts, dtype=torch.long)), batch_size=batch_size,
                      shuffle=shuffle, generator=g if shuffle else None)
