"""Unsorted and duplicated timestamps: the error names the series, where the timestamps are (a wide frame's index,
a long frame's ds column, X), and the first timestamps out of order or repeated with their positions (as iloc)."""
import re

import numpy as np
import pandas as pd
import pytest

from xseq.forecast.frames import read_panel

IDX = pd.date_range("2024-01-01", periods=10, freq="D")


def wide():
    return pd.DataFrame({"a": np.arange(10.0), "b": np.arange(10.0) ** 2}, index=IDX)


def long():
    out = wide().rename_axis("ds").reset_index().melt(id_vars="ds", var_name="unique_id", value_name="y")
    return out[["unique_id", "ds", "y"]]


def error(*args) -> str:
    with pytest.raises(ValueError) as info:
        read_panel(*args)
    return str(info.value)


def test_unsorted_wide_names_the_index_and_the_first_step_back():
    msg = error(wide().iloc[[0, 1, 2, 4, 3, 5, 6]])
    assert msg.startswith("y has unsorted timestamps in its index: 2024-01-04 00:00:00 (position 4) comes after "
                          "2024-01-05 00:00:00 (position 3)")
    assert "sort it by time first" in msg
    msg = error(wide().reset_index(drop=True).iloc[[0, 1, 3, 2, 4]])
    assert "unsorted timestamps in its index: 2 (position 3) comes after 3 (position 2)" in msg


def test_unsorted_long_names_the_series_the_column_and_the_rows():
    msg = error(long().iloc[[*range(12), 13, 12, 14]])
    assert msg.startswith("y (unique_id 'b') has unsorted timestamps in column 'ds': 2024-01-03 00:00:00 "
                          "(position 13) comes after 2024-01-04 00:00:00 (position 12)")


def test_duplicates_name_where_they_are():
    msg = error(pd.concat([wide(), wide().iloc[[3]]]).sort_index())
    assert msg == "y has duplicated timestamps in its index: 2024-01-04 00:00:00 (at positions 3, 4)"
    msg = error(pd.concat([long(), long().iloc[[12]]]).sort_values(["unique_id", "ds"]))
    assert msg == ("y (unique_id 'b') has duplicated timestamps in column 'ds': 2024-01-03 00:00:00 "
                   "(at positions 12, 13)")
    X = pd.DataFrame({"x": np.arange(12.0)}, index=IDX.append(IDX[[2, 2]]))
    assert error(wide(), X) == "X has duplicated timestamps in its index: 2024-01-03 00:00:00 (at positions 2, 10, 11)"
    X = long().drop(columns="y").assign(x=1.0)
    msg = error(long(), pd.concat([X, X.iloc[[15]]]))
    assert re.fullmatch(r"X has duplicated timestamps for unique_id 'b' in column 'ds': 2024-01-06 00:00:00 "
                        r"\(at positions 15, 20\)", msg)


def test_a_missing_timestamp_is_named_not_called_unsorted():
    y = wide()
    y.index = y.index.where(np.arange(10) != 4)  # NaT at position 4
    assert error(y) == "y has a missing timestamp (NaT) in its index at position 4"
