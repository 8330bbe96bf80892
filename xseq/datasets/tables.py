from __future__ import annotations

import pandas as pd

from .paths import data_path


def load_csv(path, time_col: str | None = "date", columns: list[str] | None = None, data_dir=None) -> pd.DataFrame:
    """A wide time-series CSV: one time column (parsed, made the sorted index) and one column per series.
    `columns` selects series; by default every column but the time column. Nothing is dropped or filled."""
    frame = pd.read_csv(data_path(path, data_dir))
    if time_col is not None:
        if time_col not in frame.columns:
            raise ValueError(f"time_col {time_col!r} is not a column of {path}; columns: {list(frame.columns)}")
        frame[time_col] = pd.to_datetime(frame[time_col])
        frame = frame.set_index(time_col)
    if columns is not None:
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise ValueError(f"columns {missing} not in {path}; available: {list(frame.columns)}")
        frame = frame[columns]
    return frame
