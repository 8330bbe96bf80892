"""What every hostile-input property asserts: a call works, or raises ValueError/TypeError whose message names one
of the arguments (or the file) it was given. Anything else (IndexError, KeyError, AttributeError, a RuntimeError
from inside torch, ...) fails the property."""
import os
import re

import numpy as np
import pandas as pd
import pytest
import torch

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, Phase, settings  # noqa: E402

# CI runs the defaults below; XSEQ_HYPOTHESIS_EXAMPLES=N runs N cases for the cheap properties and N / 4 for the
# ones that fit an estimator
EXAMPLES = int(os.environ.get("XSEQ_HYPOTHESIS_EXAMPLES", 0)) or None


def examples(default: int, share: float = 1.0) -> settings:
    n = default if EXAMPLES is None else max(1, int(EXAMPLES * share))
    return settings(max_examples=n, deadline=None, derandomize=EXAMPLES is None,
                    phases=[p for p in Phase if p is not Phase.explain],  # explaining costs minutes of reruns
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                           HealthCheck.data_too_large, HealthCheck.filter_too_much])


def names_one_of(message: str, names) -> bool:
    return any(re.search(rf"(?<![\w.]){re.escape(str(n))}(?!\w)", message) for n in names)


def works_or_names(fn, names, label: str | None = None):
    """fn() -> (True, result) or (False, the ValueError/TypeError), asserting that the message names one of
    `names`. Any other exception propagates and fails the test. With a label, the outcome is counted in
    Hypothesis's statistics (pytest --hypothesis-show-statistics)."""
    try:
        out = fn()
    except (ValueError, TypeError) as e:
        msg = str(e)
        assert names_one_of(msg, names), f"{type(e).__name__} names none of {list(names)}: {msg}"
        if label:
            _count(f"{label}: refused")
        return False, e
    if label:
        _count(f"{label}: works")
    return True, out


def _count(what: str) -> None:
    try:
        hypothesis.event(what)
    except hypothesis.errors.InvalidArgument:  # outside a Hypothesis test
        pass


def all_finite(x) -> bool:
    """Every number in a frame, array or tensor (or a list/tuple of them) is finite."""
    if isinstance(x, pd.DataFrame):
        num = x.select_dtypes("number")
        return bool(np.isfinite(num.to_numpy(dtype=np.float64)).all())
    if isinstance(x, torch.Tensor):
        return bool(torch.isfinite(x.float()).all()) if x.is_floating_point() else True
    if isinstance(x, (list, tuple)):
        return all(all_finite(v) for v in x)
    arr = np.asarray(x)
    return bool(np.isfinite(arr).all()) if arr.dtype.kind in "fc" else True
