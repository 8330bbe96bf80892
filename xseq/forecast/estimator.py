"""XLSTMForecaster: a scikit-learn style estimator around ForecastNet, trained with Lightning."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from ..common.callbacks import KeepBest, checkpointing, digest, settings_of
from ..common.quiet import check_verbose, quiet_lightning
from ..common.threads import torch_threads
from ..nn import XLSTMConfig
from .covariates import fit_static, n_static_features
from .fitting import layout, make_trainer, ridge_init
from .frames import Panel, attach_covariates, read_panel, to_frame
from .losses import LOSSES
from .model import ForecastNet
from .persistence import load_forecaster, save_forecaster
from .scaling import SCALINGS
from .training import ForecastModule, evaluate
from .windows import SAMPLINGS, context, series_windows, steps_per_epoch


@dataclass
class Backtest:
    """Result of cross_validate: per-window forecasts (None if not asked for) and metrics per series and
    overall ("all"), in the data's units and after the forecaster's per-series scaling ("_scaled")."""
    forecasts: pd.DataFrame | None
    metrics: pd.DataFrame

    def __iter__(self):
        return iter((self.forecasts, self.metrics))


class XLSTMForecaster(BaseEstimator):
    """Forecast `horizon` steps from the last `lookback` values of every series, with one global model
    (a linear skip path initialised at the closed-form ridge fit, plus an xLSTM over patches; see
    xseq.forecast.model). Each series (a column of a wide frame, or a unique_id of a long one) is a sample.

    Context: every forecast conditions on the last `lookback` observations of its series (and the covariates
    over those steps and the horizon); `predict`, `cross_validate` and the stream all use this. With
    `min_context` < lookback, shorter histories (of at least min_context values) are padded in front with
    their first value and the network reads which values were observed.

    Panels of many series: `sampling="series"` draws every training window by picking a series uniformly
    first, so that long series do not dominate; `scaling` and `loss` choose the per-series scale and the
    training loss (mse, mae, mase, smape, pinball; see xseq.forecast.losses); `season` is the period of the
    MASE scale. Covariates: X columns are future-known unless named in `hist_exog` (known only in the past);
    `fit(static=...)` takes one row of numbers or categories per series. Training runs on `devices` processes
    with a Lightning `strategy` (e.g. "ddp"; `batch_size` is the global batch).

    Validation: the last `val_size` of every series selects the ridge penalty and the training epoch (the
    untrained, linear-only network included). With `refit=True` the recipe then runs again on every window,
    the validation part included, with the selected penalty and number of epochs (no further selection).

    Output while fitting (scikit-learn's convention): verbose=0 prints nothing, verbose=1 (the default, or
    True) Lightning's progress bar only, verbose=2 also Lightning's own messages and warnings.
    progress_bar=False turns the bar off at any level (as before verbose existed).

    Checkpoints: with `checkpoint_dir` (default None: none), every training stage writes
    checkpoint_dir/<stage>/last.ckpt after each epoch ("point", then "refit" with refit=True, then "quantiles"
    where a quantile head is fitted after the point forecast): weights, optimizer, schedule, epoch, RNG states,
    early stopping's and the best-on-validation weights so far, and the series' scaling. A fit that finds the
    checkpoints of a fit of the same data and settings resumes each stage from its own (a finished stage is not
    trained again) and ends with the weights and metrics of the uninterrupted fit (bit for bit on one CPU
    process); a checkpoint of other data or settings is a ValueError naming checkpoint_dir. verbose,
    progress_bar and threads may differ.
    """

    def __init__(self, horizon: int, lookback: int, *, patch_len: int = 16, d_model: int = 64,
                 layout: str = "mm", num_heads: int = 4, dropout: float = 0.1, head: str = "flatten", loss: str = "mse",
                 quantiles=None, quantile_epochs: int = 2, cross_series: int = 0, max_epochs: int = 10,
                 batch_size: int = 256, learning_rate: float = 3e-4,
                 weight_decay: float = 0.01, patience: int = 3, val_size: float = 0.2, ridge="auto",
                 fill: str | None = None, max_train_windows: int | None = None, accelerator: str = "cpu",
                 threads: int | None = None, seed: int = 0, progress_bar: bool = True,
                 checkpoint_dir: str | None = None, min_context: int | None = None, sampling: str = "windows",
                 scaling: str = "standard", season: int = 1, hist_exog=None, gradient_clip_val: float | None = None,
                 devices: int = 1, strategy: str = "auto", deep: bool = True, refit: bool = False,
                 verbose: int = 1):
        self.horizon, self.lookback, self.patch_len = horizon, lookback, patch_len
        self.d_model, self.layout, self.num_heads, self.dropout, self.head = d_model, layout, num_heads, dropout, head
        self.loss, self.quantiles, self.quantile_epochs = loss, quantiles, quantile_epochs
        self.cross_series = cross_series
        self.max_epochs, self.batch_size, self.learning_rate = max_epochs, batch_size, learning_rate
        self.weight_decay, self.patience, self.val_size, self.ridge = weight_decay, patience, val_size, ridge
        self.fill, self.max_train_windows, self.accelerator = fill, max_train_windows, accelerator
        self.threads, self.seed, self.progress_bar, self.checkpoint_dir = threads, seed, progress_bar, checkpoint_dir
        self.min_context, self.sampling, self.scaling, self.season = min_context, sampling, scaling, season
        self.hist_exog, self.gradient_clip_val = hist_exog, gradient_clip_val
        self.devices, self.strategy, self.deep, self.refit = devices, strategy, deep, refit
        self.verbose = verbose

    # ------------------------------------------------------------------ fit
    def fit(self, y: pd.DataFrame, X: pd.DataFrame | None = None, static: pd.DataFrame | None = None
            ) -> "XLSTMForecaster":
        """y: wide or long frame; X: covariates over y's time steps (future-known ones, and the historical
        ones named in hist_exog); static: one row per series (index: series name, or a unique_id column)."""
        self._check_params()
        panel = read_panel(y, X, fill=self.fill)
        self._order_covariates(panel, X)
        static_matrix, self.static_spec_ = (None, None) if static is None else fit_static(static, panel.names,
                                                                                           panel.fmt)
        H = self.horizon
        K = self.cross_series
        if K:
            if panel.fmt != "wide":
                raise ValueError("cross_series needs a wide frame: series aligned on one time index")
            if K > self.lookback:
                raise ValueError(f"cross_series ({K}) must not exceed lookback ({self.lookback})")
        lengths = [len(s.values) for s in panel.series]
        if self.devices != 1 and self.batch_size % self.devices:
            raise ValueError(f"batch_size ({self.batch_size}) must be divisible by devices ({self.devices}): it is "
                             f"the global batch, split evenly over the processes")
        lay_of = lambda n_val: layout(
            panel, n_val, lookback=self.lookback, horizon=H, min_context=self._min_context(), scaling=self.scaling,
            season=self.season, cross=K, static=static_matrix,
            covariates=[s.covariates for s in panel.series] if panel.cov_names else None)
        lay = lay_of([self._n_val(T) for T in lengths])
        with self._torch_settings(), quiet_lightning(self.verbose):
            net, steps, self.ridge_, self.train_time_ = self._train(lay, len(lengths))
            if self.refit and len(lay.val):
                # the selection is made; now the same recipe on every window, the validation part included
                lay = lay_of([0] * len(lengths))
                epochs = self.best_epoch_ + 1 if self.best_epoch_ >= 0 else 0
                net, steps, _, seconds = self._train(lay, len(lengths), ridge=self.ridge_, epochs=epochs,
                                                     stage="refit")
                self.train_time_ += seconds
            if self._quantiles() and self.loss != "pinball":
                self._fit_quantiles(net, lay, steps)
        self.shift_, self.scale_, self.mase_scale_ = lay.shift, lay.scale, lay.mase_scale
        self.net_ = net.cpu().eval()
        self.series_names_, self.format_, self.freq_ = panel.names, panel.fmt, panel.freq
        self.history_ = panel
        self.static_ = static_matrix
        return self

    def _train(self, lay, n_series: int, ridge=None, epochs: int | None = None, stage: str = "point"):
        """Seed, fit the linear path in closed form (penalty `ridge`, default the estimator's), train the network
        (keeping its best weights on the validation windows, if any). With checkpoint_dir, the stage checkpoints
        every epoch to checkpoint_dir/<stage>/last.ckpt and resumes from a compatible one found there. Returns
        (net, steps per epoch, the penalty used, training seconds)."""
        train, val = lay.train, lay.val
        L.seed_everything(self.seed, verbose=False)
        W, chosen = ridge_init(lay.data, train, val, self.ridge if ridge is None else ridge, self.lookback,
                               self.horizon, seed=self.seed)
        net = self._build_net(len(self.covariate_names_), n_series)
        net.set_skip(W)
        steps = steps_per_epoch(len(train), self.batch_size, self.sampling, self.max_train_windows)
        epochs = self.max_epochs if epochs is None else epochs
        if epochs == 0:
            return net, steps, chosen, 0.0
        module = self._module(net, lay, steps, epochs)
        callbacks = []
        if len(val):
            self.initial_val_loss_, self.initial_val_mse_ = evaluate(module, val)
            keep = KeepBest("val_loss", self.initial_val_loss_, {k: v.clone() for k, v in net.state_dict().items()})
            callbacks += [keep, L.pytorch.callbacks.EarlyStopping("val_loss", patience=self.patience)]
        resume, more = self._checkpoints(stage, lay, epochs=epochs, ridge=chosen)
        trainer = make_trainer(self, epochs, callbacks + more, validate=bool(len(val)))
        t0 = time.perf_counter()
        trainer.fit(module, ckpt_path=resume, weights_only=True if resume else None)
        seconds = time.perf_counter() - t0
        if len(val):
            net.load_state_dict(keep.best_state)
            self.best_val_loss_, self.best_epoch_ = keep.best_score, keep.best_epoch
            self.best_val_mse_ = evaluate(module, val)[1]
        self.n_epochs_ = trainer.current_epoch
        return net, steps, chosen, seconds

    def _checkpoints(self, stage: str, lay, **extra) -> tuple[Path | None, list]:
        """Without checkpoint_dir: (None, []). With it: the checkpoint to resume this stage from (None: start
        afresh; a ValueError for one of another fit) and the callbacks that write checkpoint_dir/<stage>/last.ckpt
        after every epoch. A fit is the same when its settings (all parameters but verbose, progress_bar,
        checkpoint_dir and threads), its windows, scaling and covariates, and the stage's epochs and ridge are."""
        if not self.checkpoint_dir:
            return None, []
        folder = Path(self.checkpoint_dir) / stage
        d = lay.data
        info = {"estimator": type(self).__name__, "stage": stage, "settings": settings_of(self),
                "extra": {k: repr(v) for k, v in extra.items()},
                "data": digest(d.values, d.mask, d.covariates, d.static, *lay.train_pools, lay.val, lay.shift,
                               lay.scale, lay.mase_scale)}
        fitted = {name: torch.as_tensor(getattr(lay, name)) for name in ("shift", "scale", "mase_scale")}
        return checkpointing(folder, info, fitted)

    def _module(self, net, lay, steps: int, epochs: int, quantile_stage: bool = False) -> ForecastModule:
        return ForecastModule(net, lay.data, loss=self.loss, learning_rate=self.learning_rate,
                              weight_decay=self.weight_decay, max_epochs=epochs, steps_per_epoch=steps,
                              quantile_stage=quantile_stage, train_pools=lay.train_pools,
                              val_starts=None if quantile_stage else lay.val, batch_size=self.batch_size,
                              sampling=self.sampling, per_epoch=self.max_train_windows,
                              seed=self.seed + int(quantile_stage),
                              series_scales=(lay.shift, lay.scale, lay.mase_scale))

    def _fit_quantiles(self, net: ForecastNet, lay, steps: int) -> None:
        """Stage 2: with the point forecast fixed, fit the quantile head with the pinball loss on the training
        windows for `quantile_epochs` epochs. (Not selected on validation: the validation period may differ in
        noise level from the training period, and the point model has already used it.)"""
        frozen = [p for n, p in net.named_parameters() if not n.startswith("quantile_head")]
        for p in frozen:
            p.requires_grad_(False)
        # its own seed: the stage then starts from the same RNG state whether the stages before it trained in this
        # process or were resumed from their finished checkpoints (which draw differently)
        L.seed_everything(self.seed + 1, verbose=False)
        module = self._module(net, lay, steps, self.quantile_epochs, quantile_stage=True)
        resume, callbacks = self._checkpoints("quantiles", lay, epochs=self.quantile_epochs)
        trainer = make_trainer(self, self.quantile_epochs, callbacks, validate=False)
        trainer.fit(module, ckpt_path=resume, weights_only=True if resume else None)
        for p in frozen:
            p.requires_grad_(True)

    def _order_covariates(self, panel: Panel, X) -> None:
        """Future-known covariates first, then the historical-only ones (hist_exog), in every series."""
        hist = list(self.hist_exog or [])
        if not panel.cov_names:
            if hist:
                raise ValueError(f"hist_exog names covariates {hist}, but no X was given")
            self.covariate_names_, self.n_future_ = [], 0
            return
        unknown = [c for c in hist if c not in panel.cov_names]
        if unknown:
            raise ValueError(f"hist_exog names {unknown}, which are not columns of X ({panel.cov_names})")
        order = [c for c in panel.cov_names if c not in hist] + hist
        perm = [panel.cov_names.index(c) for c in order]
        for s in panel.series:
            s.covariates = s.covariates[:, perm]
        panel.cov_names = order
        self.covariate_names_, self.n_future_ = order, len(order) - len(hist)

    # ------------------------------------------------------------------ predict
    def predict(self, y: pd.DataFrame | None = None, X: pd.DataFrame | None = None) -> pd.DataFrame:
        """Forecast the next `horizon` steps after the end of `y` (default: the data given to fit), in the
        format of fit's input, indexed by the future timestamps. No refit. X: the covariates over the last
        `lookback` steps, and for the future-known ones over the horizon too."""
        check_is_fitted(self, "net_")
        panel = self.history_ if y is None else read_panel(y, fill=self.fill)
        self._check_same_series(panel)
        panel = self._with_future_covariates(panel, X, stored=y is None)
        L_, H = self.lookback, self.horizon
        pasts, masks, covs = [], [], []
        for i, s in enumerate(panel.series):
            T = len(s.values)
            cov = None if s.covariates is None else s.covariates[max(0, T - L_):T + H]
            past, mask, cov = context(self._scale(i, s.values), L_, cov)
            pasts.append(past)
            masks.append(mask)
            covs.append(cov)
        past = np.stack(pasts)
        cross = None
        if self.cross_series:
            cross = np.repeat(self._cross(past[None, :, -self.cross_series:]), len(past), axis=0)
        out = self._forward(past, np.stack(covs) if self.covariate_names_ else None, cross, np.stack(masks),
                            np.arange(len(past)))
        return to_frame(panel, self._median_first(self._unscale(out, np.arange(len(panel.series)))),
                        self.horizon, self._quantiles())

    def cross_validate(self, y: pd.DataFrame, n_windows: int, step: int = 1, X: pd.DataFrame | None = None,
                       return_forecasts: bool = True) -> Backtest:
        """Rolling-origin backtest of the fitted model (no refit): `n_windows` forecast origins per series,
        `step` apart, the last one `horizon` steps before the end of y. One batched forward for all windows."""
        check_is_fitted(self, "net_")
        n_windows, step = _positive_ints(n_windows=n_windows, step=step)
        panel = read_panel(y, X, fill=self.fill)
        self._check_same_series(panel)
        if self.covariate_names_ and not panel.cov_names:
            raise ValueError("the forecaster was fitted with covariates: pass X covering y's time index")
        if self.covariate_names_:
            self._order_like_fit(panel)
        L_, H = self.lookback, self.horizon
        need = self._min_context()
        pasts, masks, futures, covs, meta = [], [], [], [], []
        for i, s in enumerate(panel.series):
            T = len(s.values)
            if T < need + H + step * (n_windows - 1):  # before any array of n_windows origins is made
                raise ValueError(f"y: series {s.name!r} has {T} steps; n_windows={n_windows} windows step={step} "
                                 f"apart need {need + H + step * (n_windows - 1)}")
            origins = T - H - step * np.arange(n_windows - 1, -1, -1)
            past, mask, future, cov = series_windows(s.values, origins, L_, H, s.covariates)
            pasts.append(self._scale(i, past))
            masks.append(mask)
            futures.append(future)
            if self.covariate_names_:
                covs.append(cov)
            meta.append((i, s, origins))
        cross = None
        if self.cross_series:
            blocks = np.stack([p[:, -self.cross_series:] for p in pasts], axis=1)  # (n_windows, S, K)
            cross = np.tile(self._cross(blocks), (len(panel.series), 1))
        series_of = np.concatenate([np.full(n_windows, i) for i in range(len(panel.series))])
        out = self._forward(np.concatenate(pasts), np.concatenate(covs) if covs else None, cross,
                            np.concatenate(masks), series_of)
        out = self._median_first(self._unscale(out, series_of))
        future = np.concatenate(futures)
        metrics = _metrics(out[..., 0], future, series_of, self.scale_, panel.names)
        frame = self._backtest_frame(meta, out, future, n_windows) if return_forecasts else None
        return Backtest(frame, metrics)

    def _backtest_frame(self, meta, out, future, n_windows):
        H = self.horizon
        parts = []
        for i, s, origins in meta:
            rows = slice(i * n_windows, (i + 1) * n_windows)
            ds = s.index.to_numpy()[origins[:, None] + np.arange(H)]
            part = {"unique_id": [s.name] * ds.size,  # a list: a tuple name (MultiIndex columns) is one value
                    "ds": ds.ravel(), "cutoff": np.repeat(s.index.to_numpy()[origins - 1], H),
                    "y": future[rows].ravel(), "forecast": out[rows, :, 0].ravel()}
            for j, q in enumerate(self._quantiles()):
                part[f"forecast_q{q:g}"] = out[rows, :, 1 + j].ravel()
            parts.append(pd.DataFrame(part))
        return pd.concat(parts, ignore_index=True)

    def stream(self, batch_size: int = 1, device=None):
        """An xseq.Stream for online forecasting: update(y_t) takes the newest value of every fitted series,
        (batch_size, n_series) in fit's column order, and returns the forecast of the next `horizon` steps
        from the last `lookback` values, (batch_size, n_series, horizon) (with quantiles: a last axis of
        point, then the quantile levels ascending). It equals predict(y=history) at every step."""
        check_is_fitted(self, "net_")
        from ..nn.stream import Stream
        from .streaming import ForecastCore
        device = torch.device("cpu" if device is None else device)
        return Stream(ForecastCore(self, device), batch_size, device=device)

    # ------------------------------------------------------------------ persistence
    def save(self, path) -> None:
        """Weights and fitted state in a file that `XLSTMForecaster.load` reads with weights_only loading."""
        check_is_fitted(self, "net_")
        save_forecaster(self, path)

    @classmethod
    def load(cls, path) -> "XLSTMForecaster":
        return load_forecaster(cls, path)

    def _build_net(self, n_covariates: int, n_series: int) -> ForecastNet:
        encoder = XLSTMConfig(d_model=self.d_model, layout=self.layout, dropout=self.dropout,
                              mlstm=dict(num_heads=self.num_heads), slstm=dict(num_heads=self.num_heads))
        return ForecastNet(self.lookback, self.horizon, encoder, patch_len=min(self.patch_len, self.lookback),
                           quantiles=self._quantiles(), n_covariates=n_covariates, dropout=self.dropout,
                           head=self.head, cross_features=self.cross_series * n_series,
                           n_future_covariates=self.n_future_, n_static=n_static_features(self.static_spec_),
                           observed_mask=self._min_context() < self.lookback, deep=self.deep)

    # ------------------------------------------------------------------ helpers
    def _check_params(self) -> None:
        for name in ("horizon", "lookback", "patch_len", "d_model", "num_heads", "max_epochs", "batch_size", "patience",
                     "quantile_epochs", "season", "devices"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be a positive int; got {v!r}")
        mtw = self.max_train_windows
        if mtw is not None and (not isinstance(mtw, (int, np.integer)) or isinstance(mtw, bool) or mtw < 1):
            raise ValueError(f"max_train_windows must be None (every window) or a positive int; got {mtw!r}")
        if not isinstance(self.cross_series, int) or self.cross_series < 0:
            raise ValueError(f"cross_series must be an int >= 0; got {self.cross_series!r}")
        if self.head not in ("flatten", "last"):
            raise ValueError(f"head must be 'flatten' or 'last'; got {self.head!r}")
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}; got {self.loss!r}")
        if not isinstance(self.refit, bool):
            raise ValueError(f"refit must be True (after selection on validation, train again on every window) "
                             f"or False; got {self.refit!r}")
        if not isinstance(self.deep, bool):
            raise ValueError(f"deep must be True (linear path + xLSTM) or False (the linear path alone); "
                             f"got {self.deep!r}")
        if not self.deep and self.quantiles:
            raise ValueError("quantiles need deep=True: their head reads the xLSTM's features")
        if self.loss == "pinball" and not self.quantiles:
            raise ValueError("loss='pinball' trains quantiles: pass quantiles, e.g. [0.1, 0.9]")
        if self.scaling not in SCALINGS:
            raise ValueError(f"scaling must be one of {SCALINGS}; got {self.scaling!r}")
        if self.sampling not in SAMPLINGS:
            raise ValueError(f"sampling must be one of {SAMPLINGS}; got {self.sampling!r}")
        mc = self.min_context
        if mc is not None and (not isinstance(mc, (int, np.integer)) or isinstance(mc, bool)
                               or not 1 <= mc <= self.lookback):
            raise ValueError(f"min_context must be None or an int in [1, lookback={self.lookback}]; got {mc!r}")
        if self.hist_exog is not None and (isinstance(self.hist_exog, str)
                                           or not all(isinstance(c, str) for c in self.hist_exog)):
            raise ValueError(f"hist_exog must be a list of X's column names; got {self.hist_exog!r}")
        clip = self.gradient_clip_val
        if clip is not None and (isinstance(clip, bool) or not isinstance(clip, (int, float)) or clip <= 0):
            raise ValueError(f"gradient_clip_val must be None or a number > 0; got {clip!r}")
        if not (isinstance(self.val_size, (int, float)) and self.val_size >= 0):
            raise ValueError(f"val_size must be a fraction in [0, 1) or a number of steps; got {self.val_size!r}")
        if self.ridge != "auto" and not (isinstance(self.ridge, (int, float)) and self.ridge >= 0):
            raise ValueError(f"ridge must be 'auto' or a number >= 0; got {self.ridge!r}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1); got {self.dropout!r}")
        self._quantiles()
        check_verbose(self.verbose)

    def _min_context(self) -> int:
        return self.lookback if self.min_context is None else int(self.min_context)

    def _quantiles(self) -> tuple[float, ...]:
        if self.quantiles is None:
            return ()
        qs = sorted(float(q) for q in self.quantiles)
        if not qs or any(not 0 < q < 1 for q in qs) or len(set(qs)) != len(qs):
            raise ValueError(f"quantiles must be distinct levels in (0, 1); got {self.quantiles!r}")
        return tuple(sorted(set(qs) | {0.5}))

    def _n_val(self, T: int) -> int:
        if self.val_size == 0:
            return 0
        n = int(round(self.val_size * T)) if self.val_size < 1 else int(self.val_size)
        return max(n, self.horizon)

    def _check_same_series(self, panel: Panel) -> None:
        if panel.fmt != self.format_ or list(panel.names) != list(self.series_names_):
            raise ValueError(f"y must hold the series the forecaster was fitted on ({self.format_} format, "
                             f"{list(self.series_names_)}); got {panel.fmt} format with {list(panel.names)}")
        need = self._min_context()
        short = [s.name for s in panel.series if len(s.values) < need]
        if short:
            what = f"lookback ({self.lookback})" if need == self.lookback else f"min_context ({need})"
            raise ValueError(f"y: history shorter than {what} for series {short}")

    def _order_like_fit(self, panel: Panel) -> None:
        if sorted(panel.cov_names) != sorted(self.covariate_names_):
            raise ValueError(f"X must have the covariates {self.covariate_names_}; got {panel.cov_names}")
        perm = [panel.cov_names.index(c) for c in self.covariate_names_]
        for s in panel.series:
            s.covariates = s.covariates[:, perm]
        panel.cov_names = list(self.covariate_names_)

    def _with_future_covariates(self, panel: Panel, X, stored: bool) -> Panel:
        """The panel with covariates over its history and horizon: the future-known ones from X over the
        horizon (and history), the historical-only ones from X or, for the data given to fit, as stored."""
        if not self.covariate_names_:
            if X is not None:
                raise ValueError("X given, but the forecaster was fitted without covariates")
            return panel
        futr, hist = self.covariate_names_[:self.n_future_], self.covariate_names_[self.n_future_:]
        if X is None and (futr or not stored):
            raise ValueError(f"the forecaster was fitted with covariates {self.covariate_names_}: X must cover the "
                             f"last {self.lookback} steps" + (f" and, for {futr}, the {self.horizon} steps of the "
                                                             f"horizon" if futr else ""))
        out = Panel(panel.fmt, [type(s)(s.name, s.index, s.values) for s in panel.series], panel.freq)
        parts = []
        if X is not None:
            keys = ["unique_id", "ds"] if panel.fmt == "long" else []
            missing = [c for c in self.covariate_names_ if c not in X.columns]
            if missing or len(X.columns) - len(keys) != len(self.covariate_names_):
                raise ValueError(f"X must have the covariates {self.covariate_names_}; got "
                                 f"{[c for c in X.columns if c not in keys]}")
            if futr:
                attach_covariates(out, X[keys + futr], fill=self.fill, future=self.horizon)
                parts.append([s.covariates for s in out.series])
            if hist:
                attach_covariates(out, X[keys + hist], fill=self.fill)
                parts.append([np.concatenate([s.covariates, np.zeros((self.horizon, len(hist)))])
                              for s in out.series])
        else:  # only historical covariates, as stored at fit
            parts.append([np.concatenate([s.covariates, np.zeros((self.horizon, len(hist)))])
                          for s in panel.series])
        for k, s in enumerate(out.series):
            s.covariates = np.concatenate([p[k] for p in parts], axis=1)
        out.cov_names = list(self.covariate_names_)
        return out

    def _scale(self, i: int, values: np.ndarray) -> np.ndarray:
        return (values - self.shift_[i]) / self.scale_[i]

    def _unscale(self, out: np.ndarray, series_of: np.ndarray) -> np.ndarray:
        return out * self.scale_[series_of, None, None] + self.shift_[series_of, None, None]

    def _median_first(self, out: np.ndarray) -> np.ndarray:
        """(N, H, n_out) in ascending quantile order -> point (median) first, then every quantile."""
        if not self._quantiles():
            return out
        m = self.net_.median_index
        return np.concatenate([out[..., m:m + 1], out], axis=-1)

    def _forward(self, past: np.ndarray, cov: np.ndarray | None, cross: np.ndarray | None, mask: np.ndarray,
                 series: np.ndarray, chunk: int = 4096) -> np.ndarray:
        far = float(np.abs(past).max(initial=0.0))
        if not far < 1e18:  # squared inside the network's norms, such values overflow float32 (NaN forecasts)
            raise ValueError(f"y holds values {far:.3g} times its series' fitted scale away from the fitted level "
                             f"(scale {self.scale_.min():.3g} to {self.scale_.max():.3g}): far outside the data the "
                             f"forecaster was fitted on; refit it on data of this magnitude")
        outs = []
        f32 = dict(dtype=torch.float32)
        with torch.inference_mode():
            for s in range(0, len(past), chunk):
                sl = slice(s, s + chunk)
                kw = dict(cross=None if cross is None else torch.as_tensor(cross[sl], **f32),
                          mask=torch.as_tensor(mask[sl], **f32) if self.net_.observed_mask else None,
                          static=None if self.static_ is None else torch.as_tensor(self.static_[series[sl]], **f32))
                if cov is not None:
                    c = torch.as_tensor(cov[sl], **f32)
                    kw.update(past_cov=c[:, :self.lookback], future_cov=c[:, self.lookback:])
                outs.append(self.net_(torch.as_tensor(past[sl], **f32), **kw))
        return torch.cat(outs).double().numpy()

    @staticmethod
    def _cross(blocks: np.ndarray) -> np.ndarray:
        """(N, S, K) scaled recent values -> (N, S*K), each block minus its mean (as WindowData does)."""
        return (blocks - blocks.mean(axis=-1, keepdims=True)).reshape(len(blocks), -1)

    def _torch_settings(self):
        return torch_threads(self.threads)


def _positive_ints(**values) -> list[int]:
    """The values as ints, each checked to be an int >= 1 (NumPy ints too, bools not); a ValueError naming it."""
    for name, v in values.items():
        if not isinstance(v, (int, np.integer)) or isinstance(v, (bool, np.bool_)) or v < 1:
            raise ValueError(f"{name} must be a positive int; got {v!r}")
    return [int(v) for v in values.values()]


def _metrics(point: np.ndarray, future: np.ndarray, series_of: np.ndarray, scale: np.ndarray, names) -> pd.DataFrame:
    err = point - future
    scaled = err / scale[series_of, None]
    rows = {}
    for i, name in enumerate(names):
        sel = series_of == i
        rows[name] = _row(err[sel], scaled[sel])
    rows["all"] = _row(err, scaled)
    return pd.DataFrame(rows).T


def _row(err, scaled):
    """Means over the entries that were observed (a NaN target, possible with TiRex's fill="mask", is left out)."""
    return {"mse": float(np.nanmean(err ** 2)), "mae": float(np.nanmean(np.abs(err))),
            "mse_scaled": float(np.nanmean(scaled ** 2)), "mae_scaled": float(np.nanmean(np.abs(scaled)))}
