"""TiRexForecaster: a pretrained TiRex checkpoint as a scikit-learn style forecaster with XLSTMForecaster's
data contract (wide or long frames, forecasts indexed by the future timestamps, quantile columns,
cross_validate, save/load, stream). Zero-shot by default; max_epochs > 0 fine-tunes it with Lightning."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from ..common.checkpoints import check_format, describe, first_line, safe_load
from ..common.quiet import check_verbose
from ..common.threads import torch_threads
from .estimator import Backtest, _metrics, _positive_ints
from .frames import FILLS, MASK, Panel, read_panel, to_frame
from .tirex.checkpoint import net_from_state, read_checkpoint, state_from_net
from .tirex.config import TiRexConfig

FORMAT = "xseq.TiRexForecaster/1"


class TiRexForecaster(BaseEstimator):
    """checkpoint: path of a TiRex checkpoint (tirex-ts's model.ckpt; xseq ships none). horizon: steps ahead.
    quantiles: the quantile levels to return beside the point forecast (the median), a subset of the
    checkpoint's (0.1 ... 0.9); None: the point forecast only. fill: missing values are refused (None), filled
    ("ffill", "interpolate", "zero"), or passed to the model as missing ("mask": TiRex reads a mask).

    Every forecast reads the last `context_length` (2048 for the released model) values of its series.
    Fine-tuning (max_epochs > 0): the pinball loss over the checkpoint's quantiles on windows of the training
    part, the last val_size of every series validating (early stopping; the best weights are kept, the
    loaded ones included). While fine-tuning, verbose=0 prints nothing, verbose=1 (the default, or True)
    Lightning's progress bar only (unless progress_bar=False), verbose=2 also Lightning's own messages."""

    def __init__(self, checkpoint, horizon: int, quantiles=None, *, fill: str | None = None, batch_size: int = 32,
                 backend: str = "auto", threads: int | None = None, max_epochs: int = 0,
                 learning_rate: float = 1e-4, weight_decay: float = 0.0, val_size: float = 0.2, patience: int = 2,
                 max_train_windows: int | None = 2048, seed: int = 0, progress_bar: bool = True,
                 accelerator: str = "cpu", verbose: int = 1):
        self.checkpoint, self.horizon, self.quantiles, self.fill = checkpoint, horizon, quantiles, fill
        self.batch_size, self.backend, self.threads = batch_size, backend, threads
        self.max_epochs, self.learning_rate, self.weight_decay = max_epochs, learning_rate, weight_decay
        self.val_size, self.patience, self.max_train_windows = val_size, patience, max_train_windows
        self.seed, self.progress_bar, self.accelerator, self.verbose = seed, progress_bar, accelerator, verbose

    # ------------------------------------------------------------------ fit
    def fit(self, y: pd.DataFrame) -> "TiRexForecaster":
        """Zero-shot (max_epochs=0): read the checkpoint, check and keep the histories. Otherwise fine-tune."""
        self._check_params()
        cfg, sd = read_checkpoint(self.checkpoint)
        net = net_from_state(cfg, sd, self.backend, str(self.checkpoint))
        self._check_quantiles(cfg)
        panel = self._read(y)
        self.train_time_, self.n_epochs_ = 0.0, 0
        if self.max_epochs:
            from .tirex.finetune import finetune
            with torch_threads(self.threads):
                t0 = time.perf_counter()
                report = finetune(self, net, panel)
                self.train_time_ = time.perf_counter() - t0
            for k, v in report.items():
                setattr(self, k, v)
        self._set_fitted(net.eval(), panel)
        return self

    def _set_fitted(self, net, panel: Panel) -> None:
        self.net_, self.config_ = net, net.cfg
        self.history_, self.series_names_, self.format_, self.freq_ = panel, panel.names, panel.fmt, panel.freq
        self.scale_ = np.array([_std(s.values) for s in panel.series])

    # ------------------------------------------------------------------ predict
    def predict(self, y: pd.DataFrame | None = None) -> pd.DataFrame:
        """Forecast the next `horizon` steps after the end of `y` (default: the data given to fit), in fit's
        format, indexed by the future timestamps: the median, then the asked quantile columns."""
        check_is_fitted(self, "net_")
        panel = self.history_ if y is None else self._read(y)
        self._check_same_series(panel)
        out = self._forecast([s.values for s in panel.series])
        return to_frame(panel, self._columns(out), self.horizon, self._quantiles())

    def cross_validate(self, y: pd.DataFrame, n_windows: int, step: int = 1, return_forecasts: bool = True
                       ) -> Backtest:
        """Rolling-origin backtest (no refit): n_windows origins per series, step apart, the last one horizon
        steps before the end of y; every window reads the values before its origin."""
        check_is_fitted(self, "net_")
        n_windows, step = _positive_ints(n_windows=n_windows, step=step)
        panel = self._read(y)
        self._check_same_series(panel)
        H, contexts, futures, meta = self.horizon, [], [], []
        for i, s in enumerate(panel.series):
            T = len(s.values)
            if T < 1 + H + step * (n_windows - 1):  # before any array of n_windows origins is made
                raise ValueError(f"y: series {s.name!r} has {T} steps; n_windows={n_windows} windows step={step} "
                                 f"apart need {1 + H + step * (n_windows - 1)}")
            origins = T - H - step * np.arange(n_windows - 1, -1, -1)
            contexts += [s.values[:o] for o in origins]
            futures.append(s.values[origins[:, None] + np.arange(H)])
            meta.append((i, s, origins))
        out = self._columns(self._forecast(contexts))
        future = np.concatenate(futures)
        series_of = np.repeat(np.arange(len(panel.series)), n_windows)
        metrics = _metrics(out[..., 0], future, series_of, self.scale_, panel.names)
        frame = None
        if return_forecasts:
            parts = []
            for i, s, origins in meta:
                rows = slice(i * n_windows, (i + 1) * n_windows)
                part = {"unique_id": [s.name] * (len(origins) * H),
                        "ds": s.index.to_numpy()[origins[:, None] + np.arange(H)].ravel(),
                        "cutoff": np.repeat(s.index.to_numpy()[origins - 1], H), "y": future[rows].ravel(),
                        "forecast": out[rows, :, 0].ravel()}
                for j, q in enumerate(self._quantiles()):
                    part[f"forecast_q{q:g}"] = out[rows, :, 1 + j].ravel()
                parts.append(pd.DataFrame(part))
            frame = pd.concat(parts, ignore_index=True)
        return Backtest(frame, metrics)

    def stream(self, batch_size: int = 1, device=None):
        """An xseq.Stream: update(y_t) takes the newest value of every fitted series, (batch_size, n_series),
        and returns the next `horizon` steps' forecast, (batch_size, n_series, horizon) (with quantiles: a
        last axis of point, then the asked levels). After every observation it equals predict(y=history)."""
        check_is_fitted(self, "net_")
        from ..nn.stream import Stream
        from .tirex.streaming import TiRexCore
        device = torch.device("cpu" if device is None else device)
        return Stream(TiRexCore(self, device), batch_size, device=device)

    # ------------------------------------------------------------------ persistence
    def save(self, path) -> None:
        """The (fine-tuned) weights, configuration and fitted state, read back with weights-only loading. The
        weights are the checkpoint's: they carry its licence."""
        check_is_fitted(self, "net_")
        from .persistence import history_to_state
        params = {k: (str(v) if isinstance(v, Path) else v) for k, v in self.get_params().items()}
        state = {"format": FORMAT, "params": params, "config": self.config_.to_dict(),
                 "weights": state_from_net(self.net_), **history_to_state(self.history_)}
        for k in ("train_time_", "n_epochs_", "initial_val_loss_", "best_val_loss_", "best_epoch_"):
            if hasattr(self, k):
                state[k] = getattr(self, k)
        torch.save(state, path)

    @classmethod
    def load(cls, path) -> "TiRexForecaster":
        """The forecaster save() wrote to `path` (a path or a binary file object), read with weights-only loading:
        a file holding a pickled object that could run code, a damaged file, another model's file or one of
        another xseq version is a ValueError naming the file."""
        from .persistence import history_from_state
        state = check_format(safe_load(path, "xseq.TiRexForecaster"), FORMAT, path, "TiRexForecaster")
        source = describe(path)
        try:
            model = cls(**state["params"])
            model._check_params()
            config = state["config"]
            cfg = TiRexConfig(**{**config, "quantiles": tuple(config["quantiles"])})
            weights = state["weights"]
            if not isinstance(weights, dict) or not all(isinstance(v, torch.Tensor) for v in weights.values()):
                raise ValueError("its weights are not a dict of tensors")
            history = history_from_state(state)
        except (KeyError, TypeError, AttributeError, IndexError, ValueError, RuntimeError) as e:
            raise ValueError(f"{source} is not a complete, consistent saved TiRexForecaster ({first_line(e)})"
                             ) from None
        net = net_from_state(cfg, weights, model.backend, source)
        model._set_fitted(net.eval(), history)
        for k in ("train_time_", "n_epochs_", "initial_val_loss_", "best_val_loss_", "best_epoch_"):
            if k in state:
                setattr(model, k, state[k])
        return model

    # ------------------------------------------------------------------ helpers
    def _read(self, y) -> Panel:
        return read_panel(y, fill=self.fill, fills=FILLS + (MASK,))

    def _forecast(self, contexts: list[np.ndarray]) -> np.ndarray:
        """Quantiles (N, H, Q) for contexts of any lengths (each cut to the model's context), in batches."""
        C = self.config_.context_length
        outs = []
        with torch_threads(self.threads):
            for s in range(0, len(contexts), self.batch_size):
                chunk = [c[-C:] for c in contexts[s:s + self.batch_size]]
                width = max(len(c) for c in chunk)
                batch = np.full((len(chunk), width), np.nan)
                for j, c in enumerate(chunk):
                    batch[j, width - len(c):] = c
                outs.append(self.net_.forecast(torch.as_tensor(batch, dtype=torch.float32), self.horizon))
        return torch.cat(outs).double().numpy()

    def _columns(self, out):
        """(N, H, Q) model quantiles -> (N, H, 1 + q): the median, then the asked levels."""
        return out[..., self.output_indices()]

    def output_indices(self) -> list[int]:
        """Indices into the checkpoint's quantile levels of the median and then each asked level."""
        levels = np.array(self.config_.quantiles)
        return [int(np.abs(levels - q).argmin()) for q in (0.5, *self._quantiles())]

    def _quantiles(self) -> tuple[float, ...]:
        if self.quantiles is None:
            return ()
        qs = sorted(float(q) for q in self.quantiles)
        if not qs or len(set(qs)) != len(qs):
            raise ValueError(f"quantiles must be distinct levels; got {self.quantiles!r}")
        return tuple(qs)

    def _check_quantiles(self, cfg: TiRexConfig) -> None:
        bad = [q for q in self._quantiles() if not any(abs(q - level) < 1e-9 for level in cfg.quantiles)]
        if bad:
            raise ValueError(f"quantiles {bad} are not among the checkpoint's levels {list(cfg.quantiles)}")

    def _check_params(self) -> None:
        for name in ("horizon", "batch_size", "patience"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be a positive int; got {v!r}")
        epochs = self.max_epochs
        if not isinstance(epochs, (int, np.integer)) or isinstance(epochs, bool) or epochs < 0:
            raise ValueError(f"max_epochs must be an int >= 0 (0: zero-shot); got {self.max_epochs!r}")
        mtw = self.max_train_windows
        if mtw is not None and (not isinstance(mtw, (int, np.integer)) or isinstance(mtw, bool) or mtw < 1):
            raise ValueError(f"max_train_windows must be None (every window) or a positive int; got {mtw!r}")
        if not (isinstance(self.weight_decay, (int, float)) and self.weight_decay >= 0):
            raise ValueError(f"weight_decay must be a number >= 0; got {self.weight_decay!r}")
        if self.fill not in FILLS + (MASK,):
            raise ValueError(f"fill must be one of {FILLS + (MASK,)}; got {self.fill!r}")
        if not (isinstance(self.val_size, (int, float)) and self.val_size >= 0):
            raise ValueError(f"val_size must be a fraction in [0, 1) or a number of steps; got {self.val_size!r}")
        if not (isinstance(self.learning_rate, (int, float)) and self.learning_rate > 0):
            raise ValueError(f"learning_rate must be a number > 0; got {self.learning_rate!r}")
        self._quantiles()
        check_verbose(self.verbose)

    def _check_same_series(self, panel: Panel) -> None:
        if panel.fmt != self.format_ or list(panel.names) != list(self.series_names_):
            raise ValueError(f"y must hold the series the forecaster was fitted on ({self.format_} format, "
                             f"{list(self.series_names_)}); got {panel.fmt} format with {list(panel.names)}")


def _std(values: np.ndarray) -> float:
    sd = float(np.nanstd(values))
    return sd if sd > 0 else 1.0
