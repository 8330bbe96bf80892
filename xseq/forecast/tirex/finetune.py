"""Fine-tuning a TiRex checkpoint on the user's series with Lightning: the pinball loss over the checkpoint's
quantile levels on the next `horizon` values of windows drawn from each series' training part (targets
scaled by the window's own scale, as the model scales them), the last val_size of every series validating,
early stopping, and the best weights kept (the loaded ones included: fine-tuning never ends worse on
validation than the checkpoint it started from)."""
from __future__ import annotations

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader

from ...common.callbacks import KeepBest
from ...common.quiet import quiet_lightning, show_progress
from ..frames import Panel
from ..losses import pinball


class WindowBatches:
    """Windows (series, origin) of a panel: the context is every value before the origin (cut to the model's
    context), the target the next `horizon` values."""

    def __init__(self, panel: Panel, horizon: int, context_length: int):
        self.values = [s.values for s in panel.series]
        self.H, self.C = horizon, context_length

    def collate(self, pairs):
        ctx = np.full((len(pairs), self.C), np.nan)
        target = np.empty((len(pairs), self.H))
        for j, (i, o) in enumerate(np.asarray(pairs).reshape(-1, 2)):
            past = self.values[i][max(0, o - self.C):o]
            ctx[j, self.C - len(past):] = past
            target[j] = self.values[i][o:o + self.H]
        return torch.as_tensor(ctx, dtype=torch.float32), torch.as_tensor(target, dtype=torch.float32)


class TiRexModule(L.LightningModule):
    def __init__(self, net, horizon: int, learning_rate: float, weight_decay: float):
        super().__init__()
        self.net, self.H, self.lr, self.wd = net, horizon, learning_rate, weight_decay
        self.register_buffer("q", torch.tensor(net.cfg.quantiles), persistent=False)

    def loss(self, batch) -> torch.Tensor:
        """Mean pinball loss in units of each window's scale (missing targets left out)."""
        ctx, target = batch
        pred = self.net.rollout(ctx, self.H).transpose(1, 2)  # (B, H, Q)
        _, _, scale = self.net.tokenize(self.net.window(ctx))
        observed = torch.isfinite(target)
        t = torch.where(observed, target, pred[..., self.net.median_index].detach())
        per = pinball(pred / scale[..., None], t / scale, self.q)  # (B, H)
        return (per * observed).sum() / observed.sum().clamp_min(1)

    def training_step(self, batch, _):
        loss = self.loss(batch)
        self.log("train_loss", loss, prog_bar=True, batch_size=len(batch[0]))
        return loss

    def configure_optimizers(self):
        return torch.optim.AdamW(self.net.parameters(), lr=self.lr, weight_decay=self.wd)


class ValidatedTiRexModule(TiRexModule):
    """TiRexModule with a validation step: used only when there are validation windows (a validation_step
    without a val loader makes Lightning warn that it skips the val loop)."""

    def validation_step(self, batch, _):
        self.log("val_loss", self.loss(batch), prog_bar=True, batch_size=len(batch[0]))


def finetune(f, net, panel: Panel) -> dict:
    """Fine-tune `net` in place by the settings of TiRexForecaster `f`; returns the fitted attributes."""
    H, C = f.horizon, net.cfg.context_length
    pairs_train, pairs_val = [], []
    for i, s in enumerate(panel.series):
        T = len(s.values)
        nv = 0 if f.val_size == 0 else max(H, int(round(f.val_size * T)) if f.val_size < 1 else int(f.val_size))
        if T - nv - H < 1:
            raise ValueError(f"series {s.name!r} has {T} steps; fine-tuning needs at least one training window "
                             f"before its validation part ({nv}) and horizon ({H})")
        pairs_train += [(i, o) for o in range(1, T - nv - H + 1)]
        pairs_val += [(i, o) for o in range(max(1, T - nv), T - H + 1)]
    rng = np.random.default_rng(f.seed)
    pairs_train = np.array(pairs_train)
    if f.max_train_windows and len(pairs_train) > f.max_train_windows:
        pairs_train = pairs_train[np.sort(rng.choice(len(pairs_train), f.max_train_windows, replace=False))]
    data = WindowBatches(panel, H, C)
    L.seed_everything(f.seed, verbose=False)
    g = torch.Generator().manual_seed(f.seed)
    train = DataLoader(list(map(tuple, pairs_train)), batch_size=f.batch_size, shuffle=True, generator=g,
                       collate_fn=data.collate)
    module = (ValidatedTiRexModule if pairs_val else TiRexModule)(net, H, f.learning_rate, f.weight_decay)
    report = {}
    callbacks, val = [], None
    if pairs_val:
        val = DataLoader(pairs_val, batch_size=f.batch_size, collate_fn=data.collate)
        initial = _evaluate(module, val)
        keep = KeepBest("val_loss", initial, {k: v.clone() for k, v in net.state_dict().items()})
        callbacks = [keep, L.pytorch.callbacks.EarlyStopping("val_loss", patience=f.patience)]
        report["initial_val_loss_"] = initial
    verbose = getattr(f, "verbose", 1)
    with quiet_lightning(verbose):
        trainer = L.Trainer(max_epochs=f.max_epochs, accelerator=f.accelerator, devices=1, logger=False,
                            callbacks=callbacks, enable_checkpointing=False,
                            enable_progress_bar=show_progress(verbose, f.progress_bar),
                            enable_model_summary=False, num_sanity_val_steps=0)
        trainer.fit(module, train, val)
    if pairs_val:
        net.load_state_dict(keep.best_state)
        report.update(best_val_loss_=keep.best_score, best_epoch_=keep.best_epoch)
    report["n_epochs_"] = trainer.current_epoch
    return report


def _evaluate(module: TiRexModule, loader) -> float:
    module.net.eval()
    total, n = 0.0, 0
    with torch.no_grad():
        for batch in loader:
            total += float(module.loss(batch)) * len(batch[0])
            n += len(batch[0])
    module.net.train()
    return total / n
