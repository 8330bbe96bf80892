"""A pickled object that would run code when unpickled: what weights-only loading must refuse. What it would
run is inert: it only writes a marker file the test looks for."""
from __future__ import annotations

from pathlib import Path


def _leave_marker(path):
    Path(path).write_text("the checkpoint ran code")


class Payload:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (_leave_marker, (self.marker,))
