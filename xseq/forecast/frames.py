"""pandas in and out: wide frames (a DatetimeIndex or RangeIndex, one column per series) and long frames
(Nixtla's `unique_id, ds, y`), validated and turned into one internal form, and forecasts turned back into
the format the user gave."""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

LONG_COLUMNS = ("unique_id", "ds", "y")
FILLS = (None, "ffill", "interpolate", "zero")
MASK = "mask"  # keep missing values as NaN: only for models that read them as missing (TiRexForecaster)


@dataclass
class Series:
    """One series: its time index, its values (T,) and its covariates (T, C) or None."""
    name: object
    index: pd.Index
    values: np.ndarray
    covariates: np.ndarray | None = None


@dataclass
class Panel:
    fmt: str  # "wide" or "long"
    series: list[Series]
    freq: object  # a pandas offset for timestamps, an int step for integer time
    cov_names: list[str] = field(default_factory=list)

    @property
    def names(self) -> list:
        return [s.name for s in self.series]


def is_long(y: pd.DataFrame) -> bool:
    return set(LONG_COLUMNS) <= set(y.columns)


def read_panel(y, X=None, *, fill: str | None = None, name: str = "y", fills: tuple = FILLS) -> Panel:
    """Validate y (and X) and return a Panel. Raises ValueError naming the problem."""
    if fill not in fills:
        raise ValueError(f"fill must be one of {fills}; got {fill!r}")
    if not isinstance(y, pd.DataFrame):
        raise ValueError(f"{name} must be a pandas DataFrame (wide, or long with columns unique_id, ds, y); "
                         f"got {type(y).__name__}")
    if len(y) == 0:
        raise ValueError(f"{name} is empty")
    if y.columns.has_duplicates:
        dup = list(dict.fromkeys(y.columns[y.columns.duplicated()]))
        raise ValueError(f"{name} has duplicated column names {dup[:5]}; every column must have its own name")
    if is_long(y):
        extra = [c for c in y.columns if c not in LONG_COLUMNS]
        if extra:
            raise ValueError(f"{name} in long format takes only the columns unique_id, ds, y; got also {extra} "
                             f"(pass covariates as X)")
        missing_id = y["unique_id"].isna().to_numpy()
        if missing_id.any():  # groupby would drop these rows without a word
            raise ValueError(f"{name} has a missing unique_id in column 'unique_id' at position "
                             f"{int(np.flatnonzero(missing_id)[0])}")
        if pd.api.types.is_bool_dtype(y["y"]):
            raise ValueError(f"{name}['y'] holds bools; it must hold numbers")
        series = []
        groups = y.groupby("unique_id", sort=False)
        for uid, group in groups:
            index = _time_index(pd.Index(group["ds"].to_numpy()), f"{name} (unique_id {uid!r})",
                                where="column 'ds'", rows=groups.indices[uid])
            series.append(Series(uid, index, _numeric(group["y"], f"{name}['y'] (unique_id {uid!r})", fill)))
        panel = Panel("long", series, _common_freq(series, name))
    else:
        if len(y.columns) == 0:
            raise ValueError(f"{name} has no columns: a wide frame holds one column per series")
        index = _time_index(y.index, name, where="its index")
        bad = [c for c in y.columns if not pd.api.types.is_numeric_dtype(y[c]) or pd.api.types.is_bool_dtype(y[c])]
        if bad:
            raise ValueError(f"{name} has non-numeric column(s) {bad}; every column must be a numeric series")
        series = [Series(c, index, _numeric(y[c], f"{name}[{c!r}]", fill)) for c in y.columns]
        panel = Panel("wide", series, _freq(index, name))
    if X is not None:
        attach_covariates(panel, X, fill=fill)
    return panel


def attach_covariates(panel: Panel, X, *, fill=None, future: int = 0) -> None:
    """Align X on every series' index (extended by `future` steps past its end) and store it."""
    if not isinstance(X, pd.DataFrame):
        raise ValueError(f"X must be a pandas DataFrame; got {type(X).__name__}")
    if panel.fmt == "long":
        if not {"unique_id", "ds"} <= set(X.columns):
            raise ValueError("X must be long (columns unique_id, ds and the covariates) like y")
        cov_names = [c for c in X.columns if c not in ("unique_id", "ds")]
        groups = {uid: g.set_index("ds")[cov_names] for uid, g in X.groupby("unique_id", sort=False)}
    else:
        cov_names = list(X.columns)
        groups = None
    if not cov_names:
        raise ValueError("X has no covariate columns")
    bad = [c for c in cov_names if not pd.api.types.is_numeric_dtype(X[c])]
    if bad:
        raise ValueError(f"X has non-numeric column(s) {bad}")
    for s in panel.series:
        frame = X if groups is None else groups.get(s.name)
        if frame is None:
            raise ValueError(f"X has no rows for unique_id {s.name!r}")
        if frame.index.has_duplicates:
            where = "column 'ds'" if groups is not None else "its index"
            rows = np.flatnonzero((X["unique_id"] == s.name).to_numpy()) if groups is not None else None
            raise ValueError(f"X has duplicated timestamps{_for(s, panel)} in {where}: "
                             f"{_first_duplicate(frame.index, rows)}")
        needed = s.index.append(future_index(s.index, panel.freq, future)) if future else s.index
        missing = needed.difference(frame.index)
        if len(missing):
            what = "the forecast horizon" if future and missing.isin(needed[len(s.index):]).any() else "the history"
            raise ValueError(f"X does not cover {what}{_for(s, panel)}: {len(missing)} timestamp(s) missing, "
                             f"first {missing[0]}")
        s.covariates = np.stack([_numeric(frame.loc[needed, c], f"X[{c!r}]", fill) for c in cov_names], axis=1)
    panel.cov_names = cov_names


def future_index(index: pd.Index, freq, horizon: int) -> pd.Index:
    if isinstance(index, pd.DatetimeIndex):
        return pd.date_range(index[-1] + freq, periods=horizon, freq=freq)
    return pd.Index(index[-1] + freq * np.arange(1, horizon + 1))


def to_frame(panel: Panel, forecasts: np.ndarray, horizon: int, quantiles: tuple[float, ...]) -> pd.DataFrame:
    """forecasts: (n_series, H, n_out) in user units; point forecast = column 0 of a median-first layout."""
    point, qcols = forecasts[..., 0], forecasts[..., 1:]
    qnames = [f"q{q:g}" for q in quantiles]
    if panel.fmt == "wide":
        idx = future_index(panel.series[0].index, panel.freq, horizon)
        data = {s.name: point[i] for i, s in enumerate(panel.series)}
        for j, qn in enumerate(qnames):
            data.update({f"{s.name}_{qn}": qcols[i, :, j] for i, s in enumerate(panel.series)})
        return pd.DataFrame(data, index=idx)
    parts = []
    for i, s in enumerate(panel.series):
        part = {"unique_id": [s.name] * horizon, "ds": future_index(s.index, panel.freq, horizon), "y": point[i]}
        part.update({f"y_{qn}": qcols[i, :, j] for j, qn in enumerate(qnames)})
        parts.append(pd.DataFrame(part))
    return pd.concat(parts, ignore_index=True)


def _for(s: Series, panel: Panel) -> str:
    return f" for unique_id {s.name!r}" if panel.fmt == "long" else ""


def _time_index(index: pd.Index, name: str, where: str = "its index", rows: np.ndarray | None = None) -> pd.Index:
    """where: what holds the timestamps, for the messages ("its index", "column 'ds'"); rows: each timestamp's
    row position in the user's frame (a long frame's group; default: its position in `index`). Positions in
    the messages count from 0, as iloc does."""
    if isinstance(index, pd.DatetimeIndex) or pd.api.types.is_datetime64_any_dtype(index):
        index = pd.DatetimeIndex(index)
    elif not pd.api.types.is_integer_dtype(index):
        raise ValueError(f"{name} must be indexed by timestamps (DatetimeIndex) or integer time steps "
                         f"(RangeIndex); got {index.dtype}")
    if index.has_duplicates:
        raise ValueError(f"{name} has duplicated timestamps in {where}: {_first_duplicate(index, rows)}")
    if not index.is_monotonic_increasing:
        if index.hasnans:
            i = int(np.flatnonzero(index.isna())[0])
            raise ValueError(f"{name} has a missing timestamp (NaT) in {where} at {_at(i, rows)}")
        t = index.to_numpy()
        i = int(np.flatnonzero(t[1:] < t[:-1])[0]) + 1
        raise ValueError(f"{name} has unsorted timestamps in {where}: {index[i]} ({_at(i, rows)}) comes after "
                         f"{index[i - 1]} ({_at(i - 1, rows)}); sort it by time first")
    return index


def _at(i: int, rows: np.ndarray | None) -> str:
    return f"position {i if rows is None else int(rows[i])}"


def _first_duplicate(index: pd.Index, rows: np.ndarray | None = None) -> str:
    """'<timestamp> (at positions 3, 4)' for the first timestamp that occurs more than once."""
    dup = index[index.duplicated()][0]
    at = np.flatnonzero(index == dup)
    places = [str(int(i if rows is None else rows[i])) for i in at[:4]]
    return f"{dup} (at positions {', '.join(places)}{', ...' if len(at) > 4 else ''})"


def _freq(index: pd.Index, name: str):
    if len(index) < 3:
        raise ValueError(f"{name} needs at least 3 time steps to infer its frequency; got {len(index)}")
    if isinstance(index, pd.DatetimeIndex):
        with warnings.catch_warnings():  # pandas 3 warns that infer_freq will return an offset; we convert
            warnings.simplefilter("ignore")
            freq = index.freq or pd.infer_freq(index)
        if freq is None:
            raise ValueError(f"{name} has irregular timestamps: no frequency can be inferred "
                             f"(resample it to a regular grid first)")
        return pd.tseries.frequencies.to_offset(freq)
    steps = np.unique(np.diff(index.to_numpy()))
    if len(steps) != 1:
        raise ValueError(f"{name} has irregular integer time steps {steps[:5].tolist()}")
    return int(steps[0])


def _common_freq(series: list[Series], name: str):
    freqs = {str(f) for f in (_freq(s.index, f"{name} (unique_id {s.name!r})") for s in series)}
    if len(freqs) > 1:
        raise ValueError(f"{name}: all series must share one frequency; got {sorted(freqs)}")
    return _freq(series[0].index, name)


def _numeric(col: pd.Series, name: str, fill: str | None) -> np.ndarray:
    if pd.api.types.is_complex_dtype(col):
        raise ValueError(f"{name} holds complex numbers; it must hold real numbers")
    try:
        values = pd.to_numeric(col, errors="raise").astype(float)
    except (ValueError, TypeError) as e:
        raise ValueError(f"{name} holds values that are not numbers ({str(e).splitlines()[0][:120]})") from None
    n_missing = int(values.isna().sum())
    if n_missing:
        if fill is None:
            first = values.index[values.isna().to_numpy()][0]
            raise ValueError(f"{name} has {n_missing} missing value(s) (first at {first}); "
                             f"fill them or pass fill='ffill', 'interpolate' or 'zero'")
        if fill == "ffill":
            values = values.ffill().bfill()
        elif fill == MASK:
            if n_missing == len(values):
                raise ValueError(f"{name} has no observed value")
        elif fill == "interpolate":
            values = values.interpolate(limit_direction="both")
        else:
            values = values.fillna(0.0)
    out = values.to_numpy(dtype=np.float64)
    if np.isinf(out).any():
        raise ValueError(f"{name} has infinite values")
    if fill not in (None, MASK) and np.isnan(out).any():  # nothing to fill from: every value is missing
        raise ValueError(f"{name} has no observed value (all {len(out)} missing), so fill={fill!r} has nothing to "
                         f"fill from")
    return out
