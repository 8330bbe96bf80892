"""What an xseq.rl checkpoint holds, and how it is read: plain data only.

A checkpoint is written with torch.save and read with torch.load(weights_only=True), so opening one runs no
code from it: it holds tensors, dicts, lists, tuples, numbers, strings and bytes, nothing else. NumPy arrays
become tagged tensors (`to_plain` / `from_plain`), and an environment's state is its members' plain values
(`env_snapshot`), put back into a freshly built env of the same make (`restore_env`), never a pickled env.
"""
from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from gymnasium.envs.registration import EnvSpec

from ..common.checkpoints import safe_load as common_safe_load

_ARRAY = "__xseq_ndarray__"
_RNG = "__xseq_np_rng__"
_BIT_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")
# members rebuilt by the env's own constructor (its configuration, spaces, spec, render objects): not state
_STATIC = {"spec", "_cached_spec", "_saved_kwargs", "_ezpickle_args", "_ezpickle_kwargs", "metadata",
           "_metadata", "render_mode", "reward_range", "_reward_range"}


class NotPlain(Exception):
    """A value that has no plain-data form."""


def to_plain(obj):
    """obj with every NumPy array, NumPy scalar and NumPy Generator replaced by plain data (tensors, dicts);
    raises NotPlain for anything else that is not a tensor, number, string, bytes, None, list, tuple or dict."""
    if isinstance(obj, (np.ndarray, np.generic)):  # before the numbers: np.float64 is a float
        arr = np.asarray(obj)
        if arr.dtype.hasobject:
            raise NotPlain(f"a NumPy array of Python objects ({arr.dtype})")
        try:
            t = torch.from_numpy(arr.copy())
        except TypeError as e:
            raise NotPlain(f"a NumPy array of dtype {arr.dtype}") from e
        return {_ARRAY: t, "scalar": isinstance(obj, np.generic)}
    if obj is None or type(obj) in (bool, int, float, str, bytes) or isinstance(obj, torch.Tensor):
        return obj
    if isinstance(obj, np.random.Generator):
        state = obj.bit_generator.state
        if state.get("bit_generator") not in _BIT_GENERATORS:
            raise NotPlain(f"a NumPy Generator on {state.get('bit_generator')!r}")
        return {_RNG: to_plain(state)}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_plain(v) for v in obj) if type(obj) in (list, tuple) else _not_plain(obj)
    if isinstance(obj, dict) and type(obj) is dict:
        for k in obj:
            if not isinstance(k, (str, int, bool, float)) and k is not None:
                raise NotPlain(f"a dict with a {type(k).__name__} key")
        return {k: to_plain(v) for k, v in obj.items()}
    return _not_plain(obj)


def _not_plain(obj):
    raise NotPlain(f"a {type(obj).__module__}.{type(obj).__qualname__}")


def from_plain(obj):
    """The inverse of to_plain."""
    if isinstance(obj, dict):
        if _ARRAY in obj:
            arr = obj[_ARRAY].numpy().copy()
            return arr[()] if obj.get("scalar") else arr
        if _RNG in obj:
            state = from_plain(obj[_RNG])
            name = state.get("bit_generator")
            if name not in _BIT_GENERATORS:
                raise ValueError(f"unknown NumPy bit generator {name!r}")
            rng = np.random.Generator(getattr(np.random, name)())
            rng.bit_generator.state = state
            return rng
        return {k: from_plain(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [from_plain(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(from_plain(v) for v in obj)
    return obj


def _levels(env):
    """The env and the envs it wraps, outermost first."""
    out, seen = [], set()
    while env is not None and id(env) not in seen:
        out.append(env)
        seen.add(id(env))
        env = env.__dict__.get("env") if isinstance(env, gym.Wrapper) else None
    return out


def env_snapshot(env) -> list[dict] | None:
    """The state of an env (each wrapper level's members as plain data: numbers, arrays, RNG states), or None
    where some member has no plain form (e.g. a physics engine's state): such an env is not saved, and a
    resumed run resets it instead."""
    snap = []
    for level in _levels(env):
        members = {}
        for name, value in vars(level).items():
            if (name in _STATIC or isinstance(value, (gym.Space, EnvSpec))
                    or (name == "env" and isinstance(level, gym.Wrapper))):
                continue
            try:
                members[name] = to_plain(value)
            except NotPlain:
                return None
        snap.append({"class": f"{type(level).__module__}.{type(level).__qualname__}", "members": members})
    return snap


def restore_env(env, snap: list[dict]) -> bool:
    """Put a snapshot's state into `env`, a freshly built env of the same make; False (env untouched) where the
    wrapper chain differs from the snapshot's."""
    levels = _levels(env)
    if [f"{type(v).__module__}.{type(v).__qualname__}" for v in levels] != [s["class"] for s in snap]:
        return False
    for level, s in zip(levels, snap):
        for name, value in s["members"].items():
            level.__dict__[name] = from_plain(value)
    return True


def safe_load(path: Path, what: str):
    """torch.load(path, weights_only=True) with its failures as one ValueError naming the file: a file that holds
    pickled objects (which could run code) is refused, an unreadable one reported as truncated or corrupted."""
    return common_safe_load(path, what, note="one written by an older xseq holds such objects too: retrain it")
