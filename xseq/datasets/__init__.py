"""Loaders for the public datasets the recipes, tests and benchmarks use. Every loader takes a path or a
data directory; `data_path` resolves names against $XSEQ_DATA_DIR."""
from .ett import ETT_SPLITS, ETTSplit, ett_protocol, load_ett
from .m4 import M4_FREQUENCIES, M4Set, load_m4
from .paths import data_path
from .tables import load_csv
from .ts_format import TSDataset, load_ts

__all__ = ["load_ett", "ett_protocol", "ETTSplit", "ETT_SPLITS", "load_csv", "data_path", "load_ts", "TSDataset",
           "load_m4", "M4Set", "M4_FREQUENCIES"]
