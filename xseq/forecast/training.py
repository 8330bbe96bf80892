"""Lightning pieces of the forecaster: the LightningModule (its own data loaders, so that every process of a
DDP run takes its share of the same global batches), and a callback that keeps the best weights seen on
validation (the initial, linear-only network included)."""
from __future__ import annotations

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader

from ..common.optim import optimizer_groups
from ..common.schedules import one_cycle
from .losses import elementwise
from .model import ForecastNet
from .windows import EpochDraws, WindowBatch, WindowData, centre_blocks  # noqa: F401  (re-exported)


class ForecastModule(L.LightningModule):
    def __init__(self, net: ForecastNet, data: WindowData, *, loss: str, learning_rate: float,
                 weight_decay: float, max_epochs: int, steps_per_epoch: int, quantile_stage: bool = False,
                 train_pools: list[np.ndarray] | None = None, val_starts: np.ndarray | None = None,
                 batch_size: int = 256, sampling: str = "windows", per_epoch: int | None = None, seed: int = 0,
                 series_scales: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None):
        """quantile_stage: train only the quantile head with the pinball loss (the point forecast is frozen).
        train_pools: each series' training window starts; val_starts: the validation windows' starts.
        batch_size is the global batch (split over the processes of a DDP run). series_scales: per-series
        (shift, scale, mase_scale) for the losses in user units."""
        super().__init__()
        self.net, self.data, self.quantile_stage = net, data, quantile_stage
        self.loss_name, self.lr, self.weight_decay = loss, learning_rate, weight_decay
        self.total_steps = max(1, max_epochs * steps_per_epoch)
        self.train_pools, self.val_starts = train_pools, val_starts
        self.batch_size, self.sampling, self.per_epoch, self.seed = batch_size, sampling, per_epoch, seed
        self.register_buffer("q", torch.tensor(net.quantiles or [0.5]), persistent=False)
        ones = np.ones(data.n_series)
        shift, scale, mase = series_scales or (np.zeros(data.n_series), ones, ones)
        for name, v in (("shift", shift), ("scale", scale), ("mase_scale", mase)):
            self.register_buffer(f"series_{name}", torch.as_tensor(v, dtype=torch.float32), persistent=False)
        self._val_sums = []

    # ------------------------------------------------------------------ data
    def train_dataloader(self):
        rank, world = self.trainer.global_rank, self.trainer.world_size
        self.draws = EpochDraws(self.train_pools, self.batch_size, self.sampling, self.seed, self.per_epoch,
                                rank, world)
        return DataLoader(self.draws, batch_size=None, shuffle=False)

    def val_dataloader(self):
        if self.val_starts is None or not len(self.val_starts):
            return []
        rank, world = self.trainer.global_rank, self.trainer.world_size
        mine = torch.as_tensor(self.val_starts[rank::world], dtype=torch.long)
        return DataLoader(list(torch.split(mine, 4 * self.batch_size)), batch_size=None)

    def on_train_epoch_start(self):
        self.draws.set_epoch(self.current_epoch)

    def on_fit_start(self):
        self.data.to(self.device)

    def on_validation_start(self):
        self.data.to(self.device)

    # ------------------------------------------------------------------ loss
    def _forward(self, starts) -> tuple[torch.Tensor, WindowBatch]:
        b = self.data.batch(starts)
        return self.net(b.past, **b.net_inputs()), b

    def elementwise_loss(self, pred: torch.Tensor, b: WindowBatch) -> torch.Tensor:
        """The training objective per element (N, H): the chosen loss, or pinball in the quantile stage."""
        s = b.series
        return elementwise("pinball" if self.quantile_stage else self.loss_name, pred, b.future,
                           median_index=self.net.median_index, quantiles=self.q, shift=self.series_shift[s],
                           scale=self.series_scale[s], mase_scale=self.series_mase_scale[s])

    def objective(self, pred, b: WindowBatch) -> torch.Tensor:
        return self.elementwise_loss(pred, b).mean()

    def training_step(self, batch, _):
        starts, n_global = batch
        pred, b = self._forward(starts)
        # this process's share of the global batch mean; DDP's gradient average then equals one process's
        loss = self.elementwise_loss(pred, b).sum() / (n_global * self.data.horizon) * self.trainer.world_size
        self.log("train_loss", loss, prog_bar=True, batch_size=len(starts))
        return loss

    def validation_step(self, starts, _):
        pred, b = self._forward(starts)
        point = pred[..., self.net.median_index]
        self._val_sums.append(torch.stack([self.elementwise_loss(pred, b).sum(), ((point - b.future) ** 2).sum(),
                                           (point - b.future).abs().sum(),
                                           torch.tensor(float(b.future.numel()), device=point.device)]))

    def on_validation_epoch_end(self):
        """val_loss (the training objective, which early stopping and KeepBest monitor), val_mse, val_mae:
        sums over every process's windows, then divided (exact under DDP whatever the split)."""
        if not self._val_sums:
            return
        total = torch.stack(self._val_sums).sum(0)
        self._val_sums = []
        total = self.trainer.strategy.reduce(total, reduce_op="sum")
        n = total[3]
        self.log("val_loss", total[0] / n, prog_bar=True)
        self.log("val_mse", total[1] / n)
        self.log("val_mae", total[2] / n)

    def configure_optimizers(self):
        if self.quantile_stage:
            include = lambda n: n.startswith("quantile_head")  # noqa: E731
        else:
            include = lambda n: self.loss_name == "pinball" or not n.startswith("quantile_head")  # noqa: E731
        groups = optimizer_groups(self.net, self.weight_decay, include=include, no_decay=lambda n: n.startswith("skip"))
        opt = torch.optim.AdamW(groups, lr=self.lr)
        sched = one_cycle(opt, self.lr, self.total_steps)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def evaluate(module: ForecastModule, starts: np.ndarray) -> tuple[float, float]:
    """(training objective, point MSE) of the module's network over the windows `starts`, in eval mode."""
    net = module.net
    was_training = net.training
    net.eval()
    loss_sum, se_sum, n = 0.0, 0.0, 0
    with torch.no_grad():
        for s in range(0, len(starts), 4096):
            pred, b = module._forward(torch.as_tensor(starts[s:s + 4096]))
            loss_sum += float(module.elementwise_loss(pred, b).sum())
            se_sum += float(((pred[..., net.median_index] - b.future) ** 2).sum())
            n += b.future.numel()
    net.train(was_training)
    return loss_sum / n, se_sum / n
