"""Reader for the sktime/aeon `.ts` time-series classification format (UCR/UEA archive files).

Layout: '#' comment lines; '@' header lines (@problemName, @timeStamps, @missing, @univariate,
@dimensions, @equalLength, @seriesLength, @classLabel true|false [labels...]); then '@data' and one case per
line: the channels separated by ':', each a comma-separated list of values ('?' = missing), and the class
label last when @classLabel is true.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from .paths import data_path


@dataclass
class TSDataset:
    """X: an (n, T, C) float array when every case has the same length, else a list of (T_i, C) arrays;
    y: (n,) array of the labels as written in the file (strings); classes: the labels the header declares."""
    X: np.ndarray | list
    y: np.ndarray | None
    name: str = ""
    classes: list = field(default_factory=list)

    def __iter__(self):
        return iter((self.X, self.y))


def load_ts(path: str | os.PathLike, data_dir: str | os.PathLike | None = None) -> TSDataset:
    """Read a .ts file. `path` is a file path, or a name under `data_dir` / $XSEQ_DATA_DIR
    (e.g. "ucr/GunPoint/GunPoint_TRAIN.ts")."""
    p = data_path(path, data_dir)
    if p.is_dir():
        raise ValueError(f"{p} is a folder, not a .ts file (path)")
    header: dict[str, str] = {}
    cases, labels = [], []
    in_data = False
    with open(p, encoding="utf-8", errors="replace") as f:
        for lineno, raw in enumerate(f, 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if not in_data:
                if not line.startswith("@"):
                    raise ValueError(f"{p}:{lineno}: expected a header line starting with '@' before @data")
                key, _, value = line[1:].partition(" ")
                key = key.lower()
                if key == "data":
                    in_data = True
                    label_spec = header.get("classlabel", "false").split()
                    if not label_spec or label_spec[0].lower() not in ("true", "false"):
                        raise ValueError(f"{p}: @classLabel must be 'true' (followed by the labels) or 'false'; "
                                         f"got {header['classlabel']!r}")
                    has_label = label_spec[0].lower() == "true"
                    if header.get("timestamps", "false").lower() == "true":
                        raise ValueError(f"{p}: @timeStamps true is not supported (only value lists)")
                else:
                    header[key] = value.strip()
                continue
            parts = line.split(":")
            if has_label:
                labels.append(parts[-1].strip())
                parts = parts[:-1]
            if not parts:
                raise ValueError(f"{p}:{lineno}: case {len(cases)} has no values (only a label?)")
            try:
                channels = [np.array([np.nan if v.strip() == "?" else float(v) for v in ch.split(",")])
                            for ch in parts]
            except ValueError as e:
                raise ValueError(f"{p}:{lineno}: cannot read the values of case {len(cases)} ({e})") from None
            lengths = {len(c) for c in channels}
            if len(lengths) != 1:
                raise ValueError(f"{p}:{lineno}: the channels of case {len(cases)} have different lengths "
                                 f"{sorted(lengths)}")
            cases.append(np.stack(channels, axis=1))  # (T_i, C)
    if not in_data:
        raise ValueError(f"{p}: no @data line: not a .ts file")
    if not cases:
        raise ValueError(f"{p}: no cases after @data")
    dims = {c.shape[1] for c in cases}
    if len(dims) != 1:
        raise ValueError(f"{p}: cases have different numbers of channels {sorted(dims)}")
    if "dimensions" in header:
        declared = header["dimensions"]
        if not declared.isdigit() or int(declared) != dims.pop():
            raise ValueError(f"{p}: @dimensions says {declared!r}, the cases have another count")
    equal = len({len(c) for c in cases}) == 1
    X = np.stack(cases) if equal else cases
    classes = header.get("classlabel", "false").split()[1:]
    y = np.array(labels) if labels else None
    if y is not None and classes:
        unknown = sorted(set(y) - set(classes))
        if unknown:
            raise ValueError(f"{p}: labels {unknown} are not among the declared classes {classes}")
    return TSDataset(X, y, header.get("problemname", p.stem), classes)
