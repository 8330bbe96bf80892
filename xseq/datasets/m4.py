"""The M4 competition (Makridakis, Spiliotis & Assimakopoulos, IJF 2020): 100,000 series in six frequencies,
each file one series per row (id first, values left-aligned, trailing cells empty), as published in the
Mcompetitions/M4-methods repository (`Dataset/Train/<Freq>-train.csv`, `Dataset/Test/<Freq>-test.csv`).
Time is the integer step index (the competition's files carry no dates for the series)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .paths import data_path

# the competition's horizon and the period of its seasonal naive / MASE scale per frequency
M4_FREQUENCIES = {"Yearly": (6, 1), "Quarterly": (8, 4), "Monthly": (18, 12), "Weekly": (13, 1), "Daily": (14, 1),
                  "Hourly": (48, 24)}


@dataclass
class M4Set:
    """One frequency: the training histories (long frame unique_id, ds, y) and the test values (n_series, H)
    in the same series order, with the competition's horizon and season."""
    frequency: str
    train: pd.DataFrame
    test: np.ndarray
    ids: list[str]
    horizon: int
    season: int

    def histories(self) -> list[np.ndarray]:
        return [g.to_numpy() for _, g in self.train.groupby("unique_id", sort=False)["y"]]


def frequency_info(frequency: str) -> tuple[str, int, int]:
    """(canonical name, horizon, season) of an M4 frequency given in any letter case."""
    names = {k.lower(): k for k in M4_FREQUENCIES}
    key = names.get(str(frequency).lower())
    if key is None:
        raise ValueError(f"frequency must be one of {list(M4_FREQUENCIES)}; got {frequency!r}")
    return (key, *M4_FREQUENCIES[key])


def _read_rows(path) -> tuple[list[str], list[np.ndarray]]:
    frame = pd.read_csv(path, index_col=0, dtype={0: str})
    ids = [str(i) for i in frame.index]
    values = frame.to_numpy(dtype=np.float64)
    rows = []
    for sid, row in zip(ids, values):
        n = int(np.isfinite(row).sum())
        if n == 0 or not np.isfinite(row[:n]).all():
            raise ValueError(f"{path}: series {sid} is not left-aligned values followed by empty cells")
        rows.append(row[:n])
    return ids, rows


def load_m4(frequency: str, data_dir=None, *, train_path=None, test_path=None) -> M4Set:
    """Read `m4/<Freq>-train.csv` and `m4/<Freq>-test.csv` (under data_dir or $XSEQ_DATA_DIR), or the given
    paths. Checks that both files hold the same series in the same order and that every test row has H values."""
    name, horizon, season = frequency_info(frequency)
    train_path = data_path(train_path or f"m4/{name}-train.csv", data_dir)
    test_path = data_path(test_path or f"m4/{name}-test.csv", data_dir)
    ids, histories = _read_rows(train_path)
    test_ids, tests = _read_rows(test_path)
    if test_ids != ids:
        raise ValueError(f"{test_path} and {train_path} do not list the same series in the same order")
    bad = [sid for sid, t in zip(ids, tests) if len(t) != horizon]
    if bad:
        raise ValueError(f"{test_path}: series {bad[:3]} do not have the {name} horizon of {horizon} values")
    train = pd.DataFrame({"unique_id": np.repeat(ids, [len(h) for h in histories]),
                          "ds": np.concatenate([np.arange(len(h)) for h in histories]),
                          "y": np.concatenate(histories)})
    return M4Set(name, train, np.stack(tests), ids, horizon, season)
