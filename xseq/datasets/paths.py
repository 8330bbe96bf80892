from __future__ import annotations

import os
import re
from pathlib import Path


def data_path(relative: str | os.PathLike, data_dir: str | os.PathLike | None = None) -> Path:
    """Resolve a file of the public data sets: an existing path as given, else under `data_dir`, else under
    $XSEQ_DATA_DIR, each at the name as given and then at its place in the data layout (README "Data": a UCR
    file NAME_TRAIN.ts under ucr/NAME/, and ett/, m4/, text/). Raises FileNotFoundError saying where it looked
    and how to point at the data."""
    if not isinstance(relative, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike; got {type(relative).__name__}")
    if data_dir is not None and not isinstance(data_dir, (str, os.PathLike)):
        raise TypeError(f"data_dir must be a str, os.PathLike or None; got {type(data_dir).__name__}")
    p = Path(relative)
    if p.exists():
        return p
    roots = [Path(d) for d in (data_dir, os.environ.get("XSEQ_DATA_DIR")) if d]
    tried = []
    for root in roots:
        for candidate in (p, *_layout(p)):
            tried.append(root / candidate)
            if tried[-1].is_file() or (candidate is p and tried[-1].exists()):
                return tried[-1]
    looked = ", ".join(map(str, tried)) or str(p)
    raise FileNotFoundError(f"{relative} not found (looked at {looked}); download it and pass its path, "
                            f"or set XSEQ_DATA_DIR to the folder that holds it")


_UCR = re.compile(r"^(?P<name>.+)_(TRAIN|TEST)\.(ts|arff|tsv|txt)$", flags=re.I)


def _layout(p: Path) -> list[Path]:
    """Where a bare file name sits in the data layout."""
    if len(p.parts) != 1:
        return []
    m = _UCR.match(p.name)
    ucr = [Path("ucr") / m["name"] / p.name] if m else []
    return ucr + [Path(folder) / p.name for folder in ("ett", "m4", "text")]
