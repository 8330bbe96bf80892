"""The steps of XLSTMForecaster.fit that do not need the estimator: lay out the panel's windows, fit the
linear path in closed form, and build the Lightning trainer."""
from __future__ import annotations

from dataclasses import dataclass

import lightning as L
import numpy as np
import torch

from ..common.callbacks import AtomicCheckpointIO
from ..common.quiet import show_progress
from .baselines import NormalEquations
from .frames import Panel
from .scaling import fit_scaling
from .windows import WindowData

RIDGE_GRID = (1e-3, 1e-2, 1e-1, 1.0)


@dataclass
class Layout:
    """What fit trains on: the windows (WindowData), each series' training window starts, the validation
    starts, and the per-series scaling (shift, scale, mase_scale)."""
    data: WindowData
    train_pools: list[np.ndarray]
    val: np.ndarray
    shift: np.ndarray
    scale: np.ndarray
    mase_scale: np.ndarray

    @property
    def train(self) -> np.ndarray:
        return np.concatenate(self.train_pools) if self.train_pools else np.zeros(0, dtype=np.int64)


def layout(panel: Panel, n_val: list[int], *, lookback: int, horizon: int, min_context: int, scaling: str,
           season: int, cross: int, static: np.ndarray | None, covariates: list[np.ndarray] | None) -> Layout:
    """n_val: validation steps at the end of each series. A training window's whole horizon lies before the
    validation part; a validation window's horizon ends inside it. Windows need min_context observed values."""
    L_, H = lookback, horizon
    lengths = [len(s.values) for s in panel.series]
    for s, T, nv in zip(panel.series, lengths, n_val):
        need = min_context + H + nv
        if T < need:
            hint = "" if min_context < L_ else " (pass min_context < lookback to pad shorter histories)"
            raise ValueError(f"history of series {s.name!r} has {T} steps; context ({min_context}) + horizon ({H})"
                             f" + validation ({nv}) needs at least {need}{hint}")
    shift, scale, mase = fit_scaling([s.values[:T - nv] for s, T, nv in zip(panel.series, lengths, n_val)],
                                     scaling, season)
    values = [(s.values - a) / b for s, a, b in zip(panel.series, shift, scale)]
    data = WindowData(values, covariates, L_, H, cross=cross, n_series=len(values), min_context=min_context,
                      static=static)
    pools, val = [], []
    for i, (T, nv) in enumerate(zip(lengths, n_val)):
        pools.append(data.starts(i, np.arange(min_context, T - nv - H + 1)))
        if nv:
            val.append(data.starts(i, np.arange(max(T - nv, min_context), T - H + 1)))
    val = np.concatenate(val) if val else np.zeros(0, dtype=np.int64)
    return Layout(data, pools, val, shift, scale, mase)


def ridge_init(data: WindowData, train: np.ndarray, val: np.ndarray, ridge, lookback: int, horizon: int,
               max_windows: int = 200_000, seed: int = 0):
    """Closed-form ridge fit of the skip path on the training windows (at most max_windows of them, drawn at
    random); the penalty is chosen on the validation windows when ridge="auto". Returns (W, ridge)."""
    if len(train) > max_windows:
        train = np.sort(np.random.default_rng(seed).choice(train, max_windows, replace=False))
    extra = data.cross * data.n_series
    eq = NormalEquations(lookback, horizon, extra)
    for s in range(0, len(train), 8192):
        past, fut, _, _, cross = data.gather(torch.as_tensor(train[s:s + 8192]))
        eq.add(past.numpy(), fut.numpy(), None if cross is None else cross.numpy())
    grid = RIDGE_GRID if ridge == "auto" else (float(ridge),)
    if len(grid) == 1 or not len(val):
        return eq.solve(grid[0]), grid[0]
    past, fut, _, _, cross = data.gather(torch.as_tensor(val))
    past, fut = past.numpy().astype(np.float64), fut.numpy().astype(np.float64)
    mu = past.mean(axis=1, keepdims=True)
    X = past - mu if cross is None else np.concatenate([past - mu, cross.numpy()], axis=1)
    scores = {r: float(((X @ eq.solve(r) + mu - fut) ** 2).mean()) for r in grid}
    best = min(scores, key=scores.get)
    return eq.solve(best), best


def make_trainer(estimator, max_epochs: int, callbacks: list, *, validate: bool) -> L.Trainer:
    """A Trainer with the estimator's devices, strategy, accelerator and progress-bar settings. The module
    brings its own loaders (every process takes its share of the same global batches). Build and run it inside
    xseq.common.quiet.quiet_lightning(estimator.verbose). With the estimator's checkpoint_dir, checkpoints are
    written atomically (a run killed while saving keeps its previous one)."""
    e = estimator
    bar = show_progress(getattr(e, "verbose", 1), e.progress_bar)
    return L.Trainer(max_epochs=max_epochs, accelerator=e.accelerator, devices=e.devices, strategy=e.strategy,
                     logger=False, callbacks=callbacks, enable_checkpointing=bool(e.checkpoint_dir),
                     plugins=[AtomicCheckpointIO()] if e.checkpoint_dir else None,
                     enable_progress_bar=bar, enable_model_summary=False, num_sanity_val_steps=0,
                     use_distributed_sampler=False, gradient_clip_val=e.gradient_clip_val,
                     limit_val_batches=None if validate else 0)
