"""ETT (Electricity Transformer Temperature; Zhou et al., Informer, AAAI 2021) and the standard long-horizon
forecasting protocol of the Informer/Autoformer/PatchTST line of work: split by time into 12/4/4 months,
z-normalise every channel with the training split's mean and std, evaluate every stride-1 test window."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .tables import load_csv

ETT_COLUMNS = ["HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL", "OT"]
# (train end, val end, test end) in rows: 12/4/4 months of 30 days, hourly or every 15 minutes
ETT_SPLITS = {"h": (12 * 30 * 24, 16 * 30 * 24, 20 * 30 * 24), "m": (12 * 30 * 96, 16 * 30 * 96, 20 * 30 * 96)}


def load_ett(path="ett/ETTh1.csv", data_dir=None) -> pd.DataFrame:
    """Wide frame indexed by timestamp with the seven ETT channels (OT is the usual target)."""
    return load_csv(path, time_col="date", columns=ETT_COLUMNS, data_dir=data_dir)


@dataclass
class ETTSplit:
    """The standard protocol for one lookback L. `frame` holds the normalised rows [0, test_end).
    Windows: a window with origin t reads rows [t - L, t) and forecasts rows [t, t + H).
    Train origins: t - L >= 0, t + H <= train_end. Val origins: train_end <= t, t + H <= val_end.
    Test origins: val_end <= t, t + H <= test_end (every stride-1 window)."""
    frame: pd.DataFrame
    mean: pd.Series
    std: pd.Series
    lookback: int
    train_end: int
    val_end: int
    test_end: int

    def origins(self, part: str, horizon: int) -> np.ndarray:
        lo, hi = {"train": (self.lookback, self.train_end), "val": (self.train_end, self.val_end),
                  "test": (self.val_end, self.test_end)}[part]
        return np.arange(lo, hi - horizon + 1)


def ett_protocol(frame: pd.DataFrame, lookback: int, freq: str | None = None) -> ETTSplit:
    """Split and normalise an ETT frame. `freq` "h" or "m" (ETTh*/ETTm*); inferred from the index if None."""
    if freq is None:
        step = frame.index[1] - frame.index[0]
        freq = "h" if step == pd.Timedelta(hours=1) else "m"
    train_end, val_end, test_end = ETT_SPLITS[freq]
    if len(frame) < test_end:
        raise ValueError(f"frame has {len(frame)} rows; the ETT-{freq} protocol needs {test_end}")
    if lookback > train_end:
        raise ValueError(f"lookback {lookback} is longer than the training split ({train_end} rows)")
    frame = frame.iloc[:test_end]
    mean, std = frame.iloc[:train_end].mean(), frame.iloc[:train_end].std(ddof=0)
    return ETTSplit((frame - mean) / std, mean, std, lookback, train_end, val_end, test_end)
