from __future__ import annotations

import os
from pathlib import Path


def data_path(relative: str | os.PathLike, data_dir: str | os.PathLike | None = None) -> Path:
    """Resolve a file of the public data sets: an existing path as given, else under `data_dir`, else under
    $XSEQ_DATA_DIR. Raises FileNotFoundError saying where it looked and how to point at the data."""
    p = Path(relative)
    if p.exists():
        return p
    roots = [Path(d) for d in (data_dir, os.environ.get("XSEQ_DATA_DIR")) if d]
    for root in roots:
        if (root / p).exists():
            return root / p
    looked = ", ".join(str(r / p) for r in roots) or str(p)
    raise FileNotFoundError(f"{relative} not found (looked at {looked}); download it and pass its path, "
                            f"or set XSEQ_DATA_DIR to the folder that holds it")
