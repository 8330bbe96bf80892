"""XLSTMForecaster: a scikit-learn style estimator around ForecastNet, trained with Lightning."""
from __future__ import annotations

import time
from dataclasses import dataclass

import lightning as L
import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from .._threads import torch_threads
from ..nn import XLSTMConfig
from .baselines import NormalEquations
from .frames import Panel, attach_covariates, read_panel, to_frame
from .persistence import load_forecaster, save_forecaster
from .model import ForecastNet
from .training import ForecastModule, KeepBest, WindowData, loader

RIDGE_GRID = (1e-3, 1e-2, 1e-1, 1.0)


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

    Context: every forecast conditions on exactly the last `lookback` observations of its series (and the
    covariates over those steps and the horizon); `predict`, `cross_validate` and the stream all use this.
    """

    def __init__(self, horizon: int, lookback: int, *, patch_len: int = 16, d_model: int = 64,
                 layout: str = "mm", num_heads: int = 4, dropout: float = 0.1, head: str = "flatten", loss: str = "mse",
                 quantiles=None, quantile_epochs: int = 2, cross_series: int = 0, max_epochs: int = 10, batch_size: int = 256, learning_rate: float = 3e-4,
                 weight_decay: float = 0.01, patience: int = 3, val_size: float = 0.2, ridge="auto",
                 fill: str | None = None, max_train_windows: int | None = None, accelerator: str = "cpu",
                 threads: int | None = None, seed: int = 0, progress_bar: bool = True,
                 checkpoint_dir: str | None = None):
        self.horizon, self.lookback, self.patch_len = horizon, lookback, patch_len
        self.d_model, self.layout, self.num_heads, self.dropout, self.head = d_model, layout, num_heads, dropout, head
        self.loss, self.quantiles, self.quantile_epochs = loss, quantiles, quantile_epochs
        self.cross_series = cross_series
        self.max_epochs, self.batch_size, self.learning_rate = max_epochs, batch_size, learning_rate
        self.weight_decay, self.patience, self.val_size, self.ridge = weight_decay, patience, val_size, ridge
        self.fill, self.max_train_windows, self.accelerator = fill, max_train_windows, accelerator
        self.threads, self.seed, self.progress_bar, self.checkpoint_dir = threads, seed, progress_bar, checkpoint_dir

    # ------------------------------------------------------------------ fit
    def fit(self, y: pd.DataFrame, X: pd.DataFrame | None = None) -> "XLSTMForecaster":
        self._check_params()
        panel = read_panel(y, X, fill=self.fill)
        L_, H = self.lookback, self.horizon
        quantiles = self._quantiles()
        lengths = [len(s.values) for s in panel.series]
        n_val = [self._n_val(T) for T in lengths]
        for s, T, nv in zip(panel.series, lengths, n_val):
            need = L_ + H + nv
            if T < need:
                raise ValueError(f"history of series {s.name!r} has {T} steps; lookback ({L_}) + horizon ({H})"
                                 f" + validation ({nv}) needs at least {need}")
        mean = np.array([s.values[:T - nv].mean() for s, T, nv in zip(panel.series, lengths, n_val)])
        std = np.array([s.values[:T - nv].std() for s, T, nv in zip(panel.series, lengths, n_val)])
        std = np.where(std > 0, std, 1.0)

        offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        flat = np.concatenate([(s.values - m) / sd for s, m, sd in zip(panel.series, mean, std)])
        cov = np.concatenate([s.covariates for s in panel.series]) if panel.cov_names else None
        train = np.concatenate([o + np.arange(0, T - nv - H - L_ + 1) for o, T, nv in zip(offsets, lengths, n_val)])
        val = np.concatenate([o + np.arange(T - nv - L_, T - H - L_ + 1) for o, T, nv in zip(offsets, lengths, n_val)
                              if nv > 0]) if any(n_val) else np.zeros(0, dtype=int)
        rng = np.random.default_rng(self.seed)
        if self.max_train_windows and len(train) > self.max_train_windows:
            train = np.sort(rng.choice(train, self.max_train_windows, replace=False))
        K = self.cross_series
        if K:
            if panel.fmt != "wide":
                raise ValueError("cross_series needs a wide frame: series aligned on one time index")
            if K > L_:
                raise ValueError(f"cross_series ({K}) must not exceed lookback ({L_})")
        data = WindowData(flat, cov, L_, H, cross=K, series_len=lengths[0], n_series=len(lengths))

        with self._torch_settings():
            L.seed_everything(self.seed, verbose=False)
            W, self.ridge_ = self._linear_init(data, train, val)
            net = self._build_net(len(panel.cov_names), len(lengths))
            net.set_skip(W)
            steps = -(-len(train) // self.batch_size)
            module = ForecastModule(net, data, loss=self.loss, learning_rate=self.learning_rate,
                                    weight_decay=self.weight_decay, max_epochs=self.max_epochs, steps_per_epoch=steps)
            callbacks = []
            if len(val):
                self.initial_val_loss_, self.initial_val_mse_ = _evaluate(module, val)
                keep = KeepBest("val_loss", self.initial_val_loss_, {k: v.clone() for k, v in net.state_dict().items()})
                callbacks += [keep, L.pytorch.callbacks.EarlyStopping("val_loss", patience=self.patience)]
            if self.checkpoint_dir:
                callbacks.append(L.pytorch.callbacks.ModelCheckpoint(self.checkpoint_dir, monitor="val_loss" if len(val) else None))
            trainer = L.Trainer(max_epochs=self.max_epochs, accelerator=self.accelerator, devices=1, logger=False,
                                callbacks=callbacks, enable_checkpointing=bool(self.checkpoint_dir),
                                enable_progress_bar=self.progress_bar, enable_model_summary=False,
                                num_sanity_val_steps=0)
            t0 = time.perf_counter()
            trainer.fit(module, loader(train, self.batch_size, True, self.seed),
                        loader(val, 4 * self.batch_size, False) if len(val) else None)
            self.train_time_ = time.perf_counter() - t0
            if len(val):
                net.load_state_dict(keep.best_state)
                self.best_val_loss_, self.best_epoch_ = keep.best_score, keep.best_epoch
                self.best_val_mse_ = _evaluate(module, val)[1]
            self.n_epochs_ = trainer.current_epoch
            if quantiles:
                self._fit_quantiles(net, data, train, steps)
        self.net_ = net.cpu().eval()
        self.mean_, self.std_ = mean, std
        self.series_names_, self.format_, self.freq_ = panel.names, panel.fmt, panel.freq
        self.covariate_names_ = list(panel.cov_names)
        self.history_ = panel
        return self

    def _fit_quantiles(self, net: ForecastNet, data: WindowData, train: np.ndarray, steps: int) -> None:
        """Stage 2: with the point forecast fixed, fit the quantile head with the pinball loss on the training
        windows for `quantile_epochs` epochs. (Not selected on validation: the validation period may differ in
        noise level from the training period, and the point model has already used it.)"""
        frozen = [p for n, p in net.named_parameters() if not n.startswith("quantile_head")]
        for p in frozen:
            p.requires_grad_(False)
        module = ForecastModule(net, data, loss=self.loss, learning_rate=self.learning_rate,
                                weight_decay=self.weight_decay, max_epochs=self.quantile_epochs,
                                steps_per_epoch=steps, quantile_stage=True)
        trainer = L.Trainer(max_epochs=self.quantile_epochs, accelerator=self.accelerator, devices=1, logger=False,
                            enable_checkpointing=False, enable_progress_bar=self.progress_bar,
                            enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0)
        trainer.fit(module, loader(train, self.batch_size, True, self.seed + 1))
        for p in frozen:
            p.requires_grad_(True)

    def _linear_init(self, data: WindowData, train: np.ndarray, val: np.ndarray):
        """Closed-form ridge fit of the skip path on the training windows; the penalty is chosen on the
        validation windows when ridge="auto"."""
        extra = data.cross * data.n_series
        eq = NormalEquations(self.lookback, self.horizon, extra)
        for s in range(0, len(train), 8192):
            past, fut, _, _, cross = data.gather(torch.as_tensor(train[s:s + 8192]))
            eq.add(past.numpy(), fut.numpy(), None if cross is None else cross.numpy())
        grid = RIDGE_GRID if self.ridge == "auto" else (float(self.ridge),)
        if len(grid) == 1 or not len(val):
            return eq.solve(grid[0]), grid[0]
        past, fut, _, _, cross = data.gather(torch.as_tensor(val))
        past, fut = past.numpy().astype(np.float64), fut.numpy().astype(np.float64)
        mu = past.mean(axis=1, keepdims=True)
        X = past - mu if cross is None else np.concatenate([past - mu, cross.numpy()], axis=1)
        scores = {r: float(((X @ eq.solve(r) + mu - fut) ** 2).mean()) for r in grid}
        best = min(scores, key=scores.get)
        return eq.solve(best), best

    # ------------------------------------------------------------------ predict
    def predict(self, y: pd.DataFrame | None = None, X: pd.DataFrame | None = None) -> pd.DataFrame:
        """Forecast the next `horizon` steps after the end of `y` (default: the data given to fit), in the
        format of fit's input, indexed by the future timestamps. No refit."""
        check_is_fitted(self, "net_")
        panel = self.history_ if y is None else read_panel(y, fill=self.fill)
        self._check_same_series(panel)
        panel = self._with_future_covariates(panel, X)
        past = np.stack([self._scale(i, s.values[-self.lookback:]) for i, s in enumerate(panel.series)])
        cov = None
        if self.covariate_names_:
            cov = np.stack([s.covariates[-(self.lookback + self.horizon):] for s in panel.series])
        cross = self._cross(past[None, :, -self.cross_series:]) if self.cross_series else None
        if cross is not None:
            cross = np.repeat(cross, len(past), axis=0)
        out = self._forward(past, cov, cross)
        return to_frame(panel, self._median_first(self._unscale(out, np.arange(len(panel.series)))),
                        self.horizon, self._quantiles())

    def cross_validate(self, y: pd.DataFrame, n_windows: int, step: int = 1, X: pd.DataFrame | None = None,
                       return_forecasts: bool = True) -> Backtest:
        """Rolling-origin backtest of the fitted model (no refit): `n_windows` forecast origins per series,
        `step` apart, the last one `horizon` steps before the end of y. One batched forward for all windows."""
        check_is_fitted(self, "net_")
        if not isinstance(n_windows, int) or n_windows < 1 or not isinstance(step, int) or step < 1:
            raise ValueError(f"n_windows and step must be positive ints; got {n_windows!r}, {step!r}")
        panel = read_panel(y, X, fill=self.fill)
        self._check_same_series(panel)
        if self.covariate_names_ and not panel.cov_names:
            raise ValueError("the forecaster was fitted with covariates: pass X covering y's time index")
        L_, H = self.lookback, self.horizon
        pasts, futures, covs, meta = [], [], [], []
        if self.cross_series:
            K = self.cross_series
            T = len(panel.series[0].values)
            origins = T - H - step * np.arange(n_windows - 1, -1, -1)
            blocks = np.stack([self._scale(i, s.values[origins[:, None] + np.arange(-K, 0)])
                               for i, s in enumerate(panel.series)], axis=1)  # (n_windows, S, K)
            cross = np.tile(self._cross(blocks), (len(panel.series), 1))
        for i, s in enumerate(panel.series):
            T = len(s.values)
            origins = T - H - step * np.arange(n_windows - 1, -1, -1)
            if origins[0] < L_:
                raise ValueError(f"series {s.name!r} has {T} steps; {n_windows} windows {step} apart need "
                                 f"{L_ + H + step * (n_windows - 1)}")
            idx = origins[:, None] + np.arange(-L_, H)
            window = s.values[idx]
            pasts.append(self._scale(i, window[:, :L_]))
            futures.append(window[:, L_:])
            if self.covariate_names_:
                covs.append(s.covariates[idx])
            meta.append((i, s, origins))
        series_of = np.concatenate([np.full(n_windows, i) for i in range(len(panel.series))])
        out = self._forward(np.concatenate(pasts), np.concatenate(covs) if covs else None,
                            cross if self.cross_series else None)
        out = self._unscale(out, series_of)
        out = self._median_first(out)
        future = np.concatenate(futures)
        metrics = _metrics(out[..., 0], future, series_of, self.std_, panel.names)
        frame = None
        if return_forecasts:
            frame = self._backtest_frame(panel, meta, out, future, n_windows)
        return Backtest(frame, metrics)

    def _backtest_frame(self, panel: Panel, meta, out, future, n_windows):
        H = self.horizon
        parts = []
        for i, s, origins in meta:
            rows = slice(i * n_windows, (i + 1) * n_windows)
            ds = s.index.to_numpy()[origins[:, None] + np.arange(H)]
            part = {"unique_id": s.name, "ds": ds.ravel(), "cutoff": np.repeat(s.index.to_numpy()[origins - 1], H),
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
        from ..stream import Stream
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
                           head=self.head, cross_features=self.cross_series * n_series)

    # ------------------------------------------------------------------ helpers
    def _check_params(self) -> None:
        for name in ("horizon", "lookback", "patch_len", "d_model", "num_heads", "max_epochs", "batch_size", "patience",
                     "quantile_epochs"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be a positive int; got {v!r}")
        if not isinstance(self.cross_series, int) or self.cross_series < 0:
            raise ValueError(f"cross_series must be an int >= 0; got {self.cross_series!r}")
        if self.head not in ("flatten", "last"):
            raise ValueError(f"head must be 'flatten' or 'last'; got {self.head!r}")
        if self.loss not in ("mse", "mae"):
            raise ValueError(f"loss must be 'mse' or 'mae'; got {self.loss!r}")
        if not (isinstance(self.val_size, (int, float)) and self.val_size >= 0):
            raise ValueError(f"val_size must be a fraction in [0, 1) or a number of steps; got {self.val_size!r}")
        if self.ridge != "auto" and not (isinstance(self.ridge, (int, float)) and self.ridge >= 0):
            raise ValueError(f"ridge must be 'auto' or a number >= 0; got {self.ridge!r}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1); got {self.dropout!r}")
        self._quantiles()

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
        short = [s.name for s in panel.series if len(s.values) < self.lookback]
        if short:
            raise ValueError(f"history shorter than lookback ({self.lookback}) for series {short}")

    def _with_future_covariates(self, panel: Panel, X) -> Panel:
        if not self.covariate_names_:
            if X is not None:
                raise ValueError("X given, but the forecaster was fitted without covariates")
            return panel
        if X is None:
            raise ValueError(f"the forecaster was fitted with covariates {self.covariate_names_}: X must cover the "
                             f"last {self.lookback} steps and the {self.horizon} steps of the horizon")
        panel = Panel(panel.fmt, [type(s)(s.name, s.index, s.values) for s in panel.series], panel.freq)
        attach_covariates(panel, X, fill=self.fill, future=self.horizon)
        if panel.cov_names != self.covariate_names_:
            raise ValueError(f"X must have the covariates {self.covariate_names_}; got {panel.cov_names}")
        return panel

    def _scale(self, i: int, values: np.ndarray) -> np.ndarray:
        return (values - self.mean_[i]) / self.std_[i]

    def _unscale(self, out: np.ndarray, series_of: np.ndarray) -> np.ndarray:
        return out * self.std_[series_of, None, None] + self.mean_[series_of, None, None]

    def _median_first(self, out: np.ndarray) -> np.ndarray:
        """(N, H, n_out) in ascending quantile order -> point (median) first, then every quantile."""
        if not self._quantiles():
            return out
        m = self.net_.median_index
        return np.concatenate([out[..., m:m + 1], out], axis=-1)

    def _forward(self, past: np.ndarray, cov: np.ndarray | None, cross: np.ndarray | None = None,
                 chunk: int = 4096) -> np.ndarray:
        outs = []
        with torch.inference_mode():
            for s in range(0, len(past), chunk):
                p = torch.as_tensor(past[s:s + chunk], dtype=torch.float32)
                x = None if cross is None else torch.as_tensor(cross[s:s + chunk], dtype=torch.float32)
                if cov is None:
                    outs.append(self.net_(p, cross=x))
                else:
                    c = torch.as_tensor(cov[s:s + chunk], dtype=torch.float32)
                    outs.append(self.net_(p, c[:, :self.lookback], c[:, self.lookback:], x))
        return torch.cat(outs).double().numpy()

    @staticmethod
    def _cross(blocks: np.ndarray) -> np.ndarray:
        """(N, S, K) scaled recent values -> (N, S*K), each block minus its mean (as WindowData does)."""
        return (blocks - blocks.mean(axis=-1, keepdims=True)).reshape(len(blocks), -1)

    def _torch_settings(self):
        return torch_threads(self.threads)


def _evaluate(module: ForecastModule, starts: np.ndarray) -> tuple[float, float]:
    """(training objective, point MSE) of the module's network over the windows `starts`, in eval mode."""
    net = module.net
    net.eval()
    loss_sum, se_sum, n = 0.0, 0.0, 0
    with torch.no_grad():
        for s in range(0, len(starts), 4096):
            past, fut, pc, fc, cross = module.data.gather(torch.as_tensor(starts[s:s + 4096]))
            pred = net(past, pc, fc, cross)
            loss_sum += float(module.objective(pred, fut)) * len(fut)
            se_sum += float(((pred[..., net.median_index] - fut) ** 2).sum())
            n += len(fut)
    net.train()
    return loss_sum / n, se_sum / (n * module.data.horizon)


def _metrics(point: np.ndarray, future: np.ndarray, series_of: np.ndarray, std: np.ndarray, names) -> pd.DataFrame:
    err = point - future
    scaled = err / std[series_of, None]
    rows = {}
    for i, name in enumerate(names):
        sel = series_of == i
        rows[name] = _row(err[sel], scaled[sel])
    rows["all"] = _row(err, scaled)
    return pd.DataFrame(rows).T


def _row(err, scaled):
    return {"mse": float((err ** 2).mean()), "mae": float(np.abs(err).mean()),
            "mse_scaled": float((scaled ** 2).mean()), "mae_scaled": float(np.abs(scaled).mean())}
