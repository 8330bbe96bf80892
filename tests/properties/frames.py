"""Hypothesis strategies for hostile pandas input to the forecasters: wide and long frames of generated lengths,
indices (timestamps, integer steps, unsorted, duplicated, NaT, float, strings), values (floats, ints, bools,
objects, strings, complex, NaN, inf, huge) and column names (unicode, ints, duplicated)."""
import numpy as np
import pandas as pd
from hypothesis import strategies as st

NAMES = st.sampled_from(["a", "b", "ü ñ", "série", "时间序列", "🙂", "", "unique_id", "ds", 0, 1, 2.5, ("t", 1)])
LENGTHS = st.sampled_from([0, 1, 2, 3, 5, 12, 24, 40, 3000])
INDICES = st.sampled_from(["hourly", "daily_tz", "range", "step3", "unsorted", "duplicated", "nat", "float",
                           "strings", "irregular", "bools"])
VALUES = st.sampled_from(["float", "int", "bool", "object_numbers", "strings", "mixed", "complex", "category",
                          "float32", "nullable_int"])
POISONS = st.sampled_from([None, None, "nan", "inf", "-inf", "all_nan", 1e300, 1e6, 1e-6, "constant", "one_spike"])


def make_index(kind: str, T: int, rng) -> pd.Index:
    if kind == "hourly":
        return pd.date_range("2024-01-01", periods=T, freq="h")
    if kind == "daily_tz":
        return pd.date_range("2024-03-30", periods=T, freq="D", tz="Europe/Berlin")
    if kind == "range":
        return pd.RangeIndex(T)
    if kind == "step3":
        return pd.Index(np.arange(T) * 3 + 7)
    base = pd.date_range("2024-01-01", periods=T, freq="h")
    if kind == "unsorted":
        return base[rng.permutation(T)] if T else base
    if kind == "duplicated":
        return base[np.minimum(np.arange(T), max(T - 2, 0))]
    if kind == "nat":
        out = base.to_series().reset_index(drop=True)
        if T:
            out.iloc[rng.integers(T)] = pd.NaT
        return pd.DatetimeIndex(out)
    if kind == "float":
        return pd.Index(np.arange(T) * 0.5)
    if kind == "strings":
        return pd.Index([f"t{i}" for i in range(T)], dtype=object)
    if kind == "bools":
        return pd.Index(np.arange(T) % 2 == 0)
    # irregular
    return pd.DatetimeIndex(pd.Timestamp("2024-01-01") + pd.to_timedelta(np.cumsum(rng.integers(1, 5, T)), "h"))


def make_values(kind: str, poison, T: int, rng, scale: float = 1.0):
    v = 10 + np.sin(np.arange(T) / 3) + 0.1 * rng.standard_normal(T)
    if poison == "constant":
        v = np.full(T, 3.0)
    elif poison == "one_spike":
        v = np.zeros(T)
        if T:
            v[rng.integers(T)] = 1.0
    elif isinstance(poison, float):
        v = v * poison
    v = v * scale
    if T and poison in ("nan", "inf", "-inf"):
        v[rng.integers(T)] = float(poison)
    elif poison == "all_nan":
        v[:] = np.nan
    if kind == "float":
        return v
    if kind == "float32":
        return v.astype(np.float32)
    if kind == "int":
        return np.nan_to_num(v, posinf=0, neginf=0).astype(np.int64)
    if kind == "nullable_int":
        return pd.array(np.nan_to_num(v, posinf=0, neginf=0).astype(np.int64), dtype="Int64")
    if kind == "bool":
        return v > v.mean() if T else v.astype(bool)
    if kind == "object_numbers":
        return v.astype(object)
    if kind == "strings":
        return np.array([f"{x:.3f}" for x in v], dtype=object)
    if kind == "mixed":
        out = v.astype(object)
        if T:
            out[rng.integers(T)] = "n/a"
        return out
    if kind == "complex":
        return v + 1j
    return pd.Categorical(np.round(v))


@st.composite
def frames(draw, max_series: int = 3, names=None):
    """(frame, description): a wide or long frame built from generated parts."""
    fmt = draw(st.sampled_from(["wide", "long"]))
    if draw(st.integers(0, 2)) == 0:  # a third: an ordinary frame, hostile only in its values' scale or gaps
        n = draw(st.integers(1, max_series))
        T = draw(st.sampled_from([24, 40, 3000]))
        index_kind = draw(st.sampled_from(["hourly", "range", "step3", "daily_tz"]))
        value_kind = draw(st.sampled_from(["float", "int", "float32"]))
        poison = draw(st.sampled_from([None, 1e6, 1e-6, 1e300, "constant", "one_spike", "nan"]))
        cols = draw(st.lists(NAMES, min_size=n, max_size=n, unique_by=str)) if names is None else list(names)[:n]
    else:
        n = draw(st.integers(0, max_series))
        T = draw(LENGTHS)
        index_kind, value_kind, poison = draw(INDICES), draw(VALUES), draw(POISONS)
        cols = draw(st.lists(NAMES, min_size=n, max_size=n)) if names is None else list(names)[:n]
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    index = make_index(index_kind, T, rng)
    data = {}
    for j, c in enumerate(cols):
        # the poison hits the first series only; the others are ordinary
        data[j] = make_values(value_kind, poison if j == 0 else None, T, rng)
    wide = pd.DataFrame(data, index=index)
    wide.columns = pd.Index(cols, dtype=object) if cols else pd.RangeIndex(0)
    desc = dict(fmt=fmt, n=n, T=T, index=index_kind, values=value_kind, poison=poison, cols=cols)
    if fmt == "wide":
        return wide, desc
    parts = [pd.DataFrame({"unique_id": [c] * T, "ds": index, "y": wide.iloc[:, j]}) for j, c in enumerate(cols)]
    long = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame({"unique_id": [], "ds": [], "y": []})
    order = draw(st.sampled_from(["grouped", "interleaved", "shuffled"]))
    desc["order"] = order
    if order == "interleaved" and len(long):  # Nixtla's habit: sorted by time, the series interleaved
        long = long.iloc[np.argsort(np.tile(np.arange(T), n), kind="stable")].reset_index(drop=True)
    elif order == "shuffled" and len(long):
        long = long.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    return long, desc


def finite_input(desc) -> bool:
    return desc["poison"] not in ("nan", "inf", "-inf", "all_nan")
