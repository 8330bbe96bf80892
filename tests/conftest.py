import logging
import os
from pathlib import Path

import pytest
import torch


def pytest_collection_modifyitems(config, items):
    if not torch.cuda.is_available():
        skip = pytest.mark.skip(reason="needs a CUDA device")
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The shared data folder: $XSEQ_DATA_DIR, else ../shared/data beside the repository."""
    root = Path(os.environ.get("XSEQ_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data"))
    if not root.is_dir():
        pytest.skip(f"real data not found at {root} (set XSEQ_DATA_DIR)")
    return root


class Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records = []

    def emit(self, record):
        self.records.append(record)


@pytest.fixture
def lightning_log():
    """Every record that Lightning's loggers let through (they need not propagate to the root logger)."""
    from xseq.common.quiet import LOGGERS

    handler = Records()
    loggers = [logging.getLogger(name) for name in LOGGERS]
    for log in loggers:
        log.addHandler(handler)
    yield handler.records
    for log in loggers:
        log.removeHandler(handler)
