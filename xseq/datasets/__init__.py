"""Loaders for the public datasets the recipes, tests and benchmarks use. Every loader takes a path or a
data directory; `data_path` resolves names against $XSEQ_DATA_DIR."""
from typing import TYPE_CHECKING

from ..lazy import attach

if TYPE_CHECKING:  # the same imports, eager, for type checkers and tests/importgraph.py
    from .ett import ETT_SPLITS, ETTSplit, ett_protocol, load_ett
    from .m4 import M4_FREQUENCIES, M4Set, load_m4
    from .paths import data_path
    from .tables import load_csv
    from .ts_format import TSDataset, load_ts

_LAZY = {
    "ETT_SPLITS": ".ett",
    "ETTSplit": ".ett",
    "ett_protocol": ".ett",
    "load_ett": ".ett",
    "M4_FREQUENCIES": ".m4",
    "M4Set": ".m4",
    "load_m4": ".m4",
    "data_path": ".paths",
    "load_csv": ".tables",
    "TSDataset": ".ts_format",
    "load_ts": ".ts_format",
}


__getattr__, __dir__ = attach(__name__, _LAZY)

__all__ = ["load_ett", "ett_protocol", "ETTSplit", "ETT_SPLITS", "load_csv", "data_path", "load_ts", "TSDataset",
           "load_m4", "M4Set", "M4_FREQUENCIES"]
