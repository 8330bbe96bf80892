"""Static covariates: one row per series (a number or a category per column), turned into the network's
static features. Numbers are standardised with the fitted series' mean and std; categories become one-hot
columns over the categories seen in fit (an unseen category later is an error, never a silent zero)."""
from __future__ import annotations

import numpy as np
import pandas as pd


def fit_static(static, names: list, fmt: str) -> tuple[np.ndarray, dict]:
    """static: a DataFrame indexed by series name (a wide frame's columns, a long frame's unique_id), or with
    a unique_id column. Returns the (n_series, F) feature matrix and the spec that encodes new rows alike."""
    frame = _rows(static, names)
    spec = {"columns": [], "numeric": {}, "categories": {}}
    for c in frame.columns:
        col = frame[c]
        if pd.api.types.is_bool_dtype(col) or not pd.api.types.is_numeric_dtype(col):
            cats = sorted({str(v) for v in col})
            spec["categories"][str(c)] = cats
        else:
            v = col.to_numpy(dtype=np.float64)
            if not np.isfinite(v).all():
                raise ValueError(f"static[{c!r}] has missing or infinite values")
            sd = float(v.std())
            spec["numeric"][str(c)] = [float(v.mean()), sd if sd > 0 else 1.0]
        spec["columns"].append(str(c))
    return encode_static(spec, frame), spec


def encode_static(spec: dict, frame: pd.DataFrame) -> np.ndarray:
    parts = []
    for c in spec["columns"]:
        col = frame[c] if c in frame.columns else None
        if col is None:
            raise ValueError(f"static has no column {c!r} (fitted with {spec['columns']})")
        if c in spec["numeric"]:
            mean, sd = spec["numeric"][c]
            parts.append(((col.to_numpy(dtype=np.float64) - mean) / sd)[:, None])
        else:
            cats = spec["categories"][c]
            values = [str(v) for v in col]
            unseen = sorted(set(values) - set(cats))
            if unseen:
                raise ValueError(f"static[{c!r}] has categories {unseen} not seen in fit ({cats})")
            parts.append((np.array(values)[:, None] == np.array(cats)[None, :]).astype(np.float64))
    return np.concatenate(parts, axis=1)


def n_static_features(spec: dict | None) -> int:
    if not spec:
        return 0
    return len(spec["numeric"]) + sum(len(c) for c in spec["categories"].values())


def _rows(static, names: list) -> pd.DataFrame:
    if not isinstance(static, pd.DataFrame):
        raise ValueError(f"static must be a pandas DataFrame with one row per series; got {type(static).__name__}")
    frame = static.set_index("unique_id") if "unique_id" in static.columns else static
    if frame.index.has_duplicates:
        raise ValueError(f"static has duplicated series {sorted(set(frame.index[frame.index.duplicated()]))[:5]}")
    if frame.shape[1] == 0:
        raise ValueError("static has no columns")
    missing = [n for n in names if n not in frame.index]
    if missing:
        raise ValueError(f"static has no row for series {missing[:5]}")
    extra = [n for n in frame.index if n not in set(names)]
    if extra:
        raise ValueError(f"static has rows for series that are not in y: {extra[:5]}")
    bad = [c for c in frame.columns if frame[c].isna().any()]
    if bad:
        raise ValueError(f"static has missing values in column(s) {bad}")
    return frame.loc[names]
