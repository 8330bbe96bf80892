"""Shared by the verbose/quiet tests: what a progress bar line looks like, and the records Lightning's loggers
let through."""
from __future__ import annotations

import re

BAR = re.compile(r"^(Training|Epoch \d+|Validation|Validation DataLoader \d+|Sanity Checking)\b")


def bar_only(text: str) -> bool:
    """Every piece of the text (split at carriage returns and newlines, cursor moves removed) is a progress bar."""
    pieces = [p.strip() for p in re.split(r"[\r\n]", re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", text))]
    return all(not p or BAR.match(p) for p in pieces)
