from __future__ import annotations

import pandas as pd

from .paths import data_path


def load_csv(path, time_col: str | None = "date", columns: list[str] | None = None, data_dir=None) -> pd.DataFrame:
    """A wide time-series CSV: one time column (parsed, made the index, rows sorted by it; a stable sort, so rows
    with equal timestamps keep their order) and one column per series. `columns` selects series; by default every
    column but the time column. Nothing is dropped or filled. A file that is not such a CSV (empty, ragged rows,
    not UTF-8, unparseable timestamps) is a ValueError naming it."""
    if columns is not None and (isinstance(columns, str) or not all(isinstance(c, str) for c in columns)):
        raise TypeError(f"columns must be a list of column names (str) or None; got {columns!r}")
    if time_col is not None and not isinstance(time_col, str):
        raise TypeError(f"time_col must be a column name (str) or None; got {time_col!r}")
    p = data_path(path, data_dir)
    if p.is_dir():
        raise ValueError(f"{str(p)!r} is a folder, not a CSV file (path)")
    try:
        frame = pd.read_csv(p)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as e:
        raise ValueError(f"{str(p)!r} is not a readable CSV file: {_first_line(e)}") from None
    if time_col is not None:
        if time_col not in frame.columns:
            raise ValueError(f"time_col {time_col!r} is not a column of {path}; columns: {list(frame.columns)}")
        try:
            frame[time_col] = pd.to_datetime(frame[time_col])
        except (ValueError, TypeError, OverflowError) as e:
            raise ValueError(f"time_col {time_col!r} of {str(p)!r} holds values that are not timestamps: "
                             f"{_first_line(e)}") from None
        frame = frame.set_index(time_col).sort_index(kind="stable")
    if columns is not None:
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise ValueError(f"columns {missing} not in {path}; available: {list(frame.columns)}")
        frame = frame[columns]
    return frame


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:200]}" if text else type(e).__name__
