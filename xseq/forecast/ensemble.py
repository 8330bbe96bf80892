"""ForecastEnsemble: several XLSTMForecasters that differ in lookback and seed, fitted on the same data and
combined by the median of their forecasts (every strong M4 entry ensembles; the median is robust to one
member that goes astray). Members are trained one after the other; `member_times_` reports the cost."""
from __future__ import annotations

import itertools
import os
import time

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, clone
from sklearn.utils.validation import check_is_fitted

from .estimator import Backtest, XLSTMForecaster, _metrics

FORMAT = "xseq.ForecastEnsemble/1"


class ForecastEnsemble(BaseEstimator):
    """base: an XLSTMForecaster whose settings every member shares; lookbacks: the members' lookbacks
    (default: the base's); n_seeds: members per lookback, with seeds base.seed, base.seed + 1, ...
    The ensemble has len(lookbacks) * n_seeds members; predict and cross_validate return the median."""

    def __init__(self, base: XLSTMForecaster, lookbacks=None, n_seeds: int = 1):
        self.base, self.lookbacks, self.n_seeds = base, lookbacks, n_seeds

    def _member_params(self) -> list[dict]:
        if not isinstance(self.base, XLSTMForecaster):
            raise ValueError(f"base must be an XLSTMForecaster; got {type(self.base).__name__}")
        lookbacks = [self.base.lookback] if self.lookbacks is None else list(self.lookbacks)
        if not lookbacks or any(not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1
                                for v in lookbacks):
            raise ValueError(f"lookbacks must be a non-empty list of positive ints; got {self.lookbacks!r}")
        if not isinstance(self.n_seeds, (int, np.integer)) or isinstance(self.n_seeds, bool) or self.n_seeds < 1:
            raise ValueError(f"n_seeds must be a positive int; got {self.n_seeds!r}")
        out = []
        for lb, k in itertools.product(lookbacks, range(self.n_seeds)):
            p = {"lookback": int(lb), "seed": self.base.seed + k}
            if self.base.min_context is not None:
                p["min_context"] = min(self.base.min_context, int(lb))
            if self.base.checkpoint_dir:  # one folder per member: a killed ensemble fit resumes member by member
                p["checkpoint_dir"] = os.path.join(self.base.checkpoint_dir, f"lookback{int(lb)}-seed{p['seed']}")
            out.append(p)
        return out

    def fit(self, y: pd.DataFrame, X: pd.DataFrame | None = None, static: pd.DataFrame | None = None
            ) -> "ForecastEnsemble":
        self.members_, self.member_times_ = [], []
        for params in self._member_params():
            t0 = time.perf_counter()
            self.members_.append(clone(self.base).set_params(**params).fit(y, X, static=static))
            self.member_times_.append(time.perf_counter() - t0)
        self.train_time_ = float(sum(self.member_times_))
        return self

    def predict(self, y: pd.DataFrame | None = None, X: pd.DataFrame | None = None) -> pd.DataFrame:
        """The median over members of their forecasts (every column, quantiles included)."""
        check_is_fitted(self, "members_")
        frames = [m.predict(y, X) for m in self.members_]
        return _median_frame(frames)

    def cross_validate(self, y: pd.DataFrame, n_windows: int, step: int = 1, X: pd.DataFrame | None = None,
                       return_forecasts: bool = True) -> Backtest:
        check_is_fitted(self, "members_")
        frames = [m.cross_validate(y, n_windows, step, X).forecasts for m in self.members_]
        frame = _median_frame(frames)
        first = self.members_[0]
        names = list(first.series_names_)
        series_of = frame["unique_id"].map({n: i for i, n in enumerate(names)}).to_numpy()
        H = first.horizon
        point = frame["forecast"].to_numpy().reshape(-1, H)
        future = frame["y"].to_numpy().reshape(-1, H)
        metrics = _metrics(point, future, series_of.reshape(-1, H)[:, 0], first.scale_, names)
        return Backtest(frame if return_forecasts else None, metrics)

    def save(self, path) -> None:
        check_is_fitted(self, "members_")
        import io
        blobs = []
        for m in self.members_:
            buf = io.BytesIO()
            m.save(buf)
            blobs.append(torch.frombuffer(bytearray(buf.getvalue()), dtype=torch.uint8))
        torch.save({"format": FORMAT, "members": blobs, "times": list(self.member_times_),
                    "base": self.base.get_params(),
                    "lookbacks": None if self.lookbacks is None else [int(v) for v in self.lookbacks],
                    "n_seeds": int(self.n_seeds)}, path)

    @classmethod
    def load(cls, path) -> "ForecastEnsemble":
        import io

        from ..common.checkpoints import check_format, describe, first_line, safe_load
        state = check_format(safe_load(path, "xseq.ForecastEnsemble"), FORMAT, path, "ForecastEnsemble")
        try:
            members = []
            for i, b in enumerate(state["members"]):
                blob = io.BytesIO(b.numpy().tobytes())
                blob.name = f"{getattr(path, 'name', path)} (member {i})"  # what messages about it name
                members.append(XLSTMForecaster.load(blob))
            out = cls(XLSTMForecaster(**state["base"]), state["lookbacks"], state["n_seeds"])
            out.members_, out.member_times_ = members, state["times"]
        except (KeyError, TypeError, AttributeError, IndexError) as e:
            raise ValueError(f"{describe(path)} is not a complete saved ForecastEnsemble ({first_line(e)})") from None
        out.train_time_ = float(sum(out.member_times_))
        return out


def _median_frame(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Elementwise median of the numeric forecast columns of frames that share their layout."""
    first = frames[0]
    keep = {"unique_id", "ds", "cutoff", "y"} if "cutoff" in first.columns else {"unique_id", "ds"}
    cols = [c for c in first.columns if c not in keep and pd.api.types.is_numeric_dtype(first[c])]
    out = first.copy()
    out[cols] = np.median(np.stack([f[cols].to_numpy(dtype=np.float64) for f in frames]), axis=0)
    return out
