"""Stream: feed a model one observation at a time, in constant time and memory per observation.

A Stream drives a *core* (the model-specific part) and owns everything a long-running online job needs:
the carried state of every row, which rows have started, checkpointing, and input validation.

    stream = model.stream(batch_size=2)         # encoder, forecaster or classifier
    out = stream.update(x_t)                    # x_t: (2, n_features) -> the model's output after x_t
    out = stream.update(x_t, active=mask)       # rows where mask is False neither advance nor change
    stream.reset(rows=[1])                      # row 1 starts a new sequence
    torch.save(stream.state_dict(), path)       # ... later, anywhere:
    stream.load_state_dict(torch.load(path))    # continues exactly where it stopped

A core implements:
    name: str                                   the model's kind, for error messages
    n_features: int                             the size of one observation
    init(batch_size, device) -> TensorDict      the state before any observation
    step(x, state) -> (out, state)              one observation for every row (x checked, finite)
    identity() -> dict                          json-able; equal only for the same model and weights
Every update runs under torch.inference_mode(): no autograd graph grows with the stream.
"""
from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import torch
from tensordict import TensorDict

from .rows import where_rows, where_rows_tensor

__all__ = ["Stream", "weights_digest"]


def weights_digest(module: torch.nn.Module) -> str:
    """A short hash of a module's parameters and buffers (names, shapes, dtypes and values)."""
    h = hashlib.sha256()
    for name, t in module.state_dict().items():
        t = t.detach().cpu().contiguous()
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype};".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:16]


class Stream:
    """Online inference over `batch_size` independent rows (series, episodes, users ...).

    update(x, active=None) -> the core's output for every row after its newest observation. Rows where
        `active` is False keep their state and their last output; their entries of x are ignored (they may
        hold NaN placeholders), so rows can start and end at different times.
    reset(rows=None) -> the chosen rows (default: all) start a new sequence.
    steps -> (batch_size,) observations each row has seen since its last reset.
    state_dict() / load_state_dict(d) -> a checkpoint of plain tensors (torch.load(weights_only=True) reads
        it); loading checks that it was written by the same model with the same weights.
    """

    def __init__(self, core, batch_size: int = 1, device=None):
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int; got {batch_size!r}")
        self.core = core
        self.device = torch.device("cpu" if device is None else device)
        self._identity = None
        self._start(batch_size)

    # ------------------------------------------------------------------ public
    @property
    def batch_size(self) -> int:
        return self._steps.shape[0]

    @property
    def steps(self) -> torch.Tensor:
        return self._steps.clone()

    def update(self, x, active=None) -> torch.Tensor:
        x = self._check_x(x)
        mask = self._check_rows("active", active)
        if x.is_floating_point() and not _all_finite(x):
            bad = ~torch.isfinite(x).all(dim=-1)
            if mask is not None:
                bad &= mask
        else:
            bad = None
        if bad is not None and bad.any():
            rows = bad.nonzero().flatten().tolist()
            raise ValueError(f"x holds NaN or infinite values in rows {rows}; mark rows without an observation "
                             "with active=..., or clean the data")
        with torch.inference_mode():
            if mask is not None:
                zero = torch.zeros((), dtype=x.dtype, device=x.device)
                x = torch.where(mask.view(-1, *([1] * (x.dim() - 1))), x, zero)
            out, state = self.core.step(x, self._state)
            if mask is None:
                self._state, self._out = state, out
                self._steps += 1
            else:
                self._state = where_rows(mask, state, self._state)
                self._out = out if self._out is None else where_rows_tensor(mask, out, self._out)
                self._steps += mask.long()
            return self._out

    def reset(self, rows=None) -> None:
        """rows: None (every row), a bool mask (batch_size,), or a sequence of row indices."""
        if rows is None:
            self._start(self.batch_size)
            return
        mask = self._check_rows("rows", rows)
        with torch.inference_mode():
            self._state = where_rows(mask, self.core.init(self.batch_size, self.device), self._state)
            if self._out is not None:
                self._out = where_rows_tensor(mask, torch.full_like(self._out, float("nan")), self._out)
            self._steps = torch.where(mask, 0, self._steps)

    def state_dict(self) -> dict:
        flat = {".".join(k) if isinstance(k, tuple) else k: v.clone()
                for k, v in self._state.items(include_nested=True, leaves_only=True)}
        return {"identity": json.dumps(self.identity(), sort_keys=True), "batch_size": self.batch_size,
                "steps": self._steps.clone(), "state": flat,
                "output": None if self._out is None else self._out.clone()}

    def load_state_dict(self, d: dict) -> None:
        if not isinstance(d, dict) or not {"identity", "batch_size", "steps", "state", "output"} <= d.keys():
            raise ValueError("state dict must come from Stream.state_dict(); got "
                             f"{type(d).__name__} with keys {sorted(d) if isinstance(d, dict) else None}")
        mine = json.dumps(self.identity(), sort_keys=True)
        if d["identity"] != mine:
            raise ValueError(f"state dict was written by another model: its identity is {d['identity']}, "
                             f"this {self.core.name}'s is {mine}")
        B = d["batch_size"]
        template = self.core.init(B, "meta")
        want = {".".join(k) if isinstance(k, tuple) else k: v
                for k, v in template.items(include_nested=True, leaves_only=True)}
        got = d["state"]
        if set(want) != set(got):
            raise ValueError(f"state dict entries {sorted(got)} do not match this {self.core.name}'s {sorted(want)}")
        for k, v in want.items():
            if tuple(got[k].shape) != tuple(v.shape):
                raise ValueError(f"state dict entry {k!r} has shape {tuple(got[k].shape)}; expected {tuple(v.shape)}")
        with torch.inference_mode():
            state = TensorDict({}, batch_size=[B], device=self.device)
            for k, v in got.items():
                state.set(tuple(k.split(".")), v.to(device=self.device, dtype=want[k].dtype).clone())
            self._state = state
            self._steps = d["steps"].to(self.device).clone()
            self._out = None if d["output"] is None else d["output"].to(self.device).clone()

    def identity(self) -> dict:
        if self._identity is None:
            self._identity = self.core.identity()
        return self._identity

    # ------------------------------------------------------------------ internals
    def _start(self, batch_size: int) -> None:
        with torch.inference_mode():
            self._state = self.core.init(batch_size, self.device)
            self._steps = torch.zeros(batch_size, dtype=torch.long, device=self.device)
        self._out = None

    def _check_x(self, x) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            try:
                x = torch.as_tensor(x)
            except (TypeError, ValueError, RuntimeError) as e:
                raise ValueError(f"x must be an array of shape ({self.batch_size}, {self.core.n_features}); "
                                 f"got {type(x).__name__} ({e})") from None
        if not (x.is_floating_point() or x.dtype in (torch.int32, torch.int64)):
            raise ValueError(f"x must hold real numbers; got dtype {x.dtype}")
        B, F = self.batch_size, self.core.n_features
        if tuple(x.shape) != (B, F):
            raise ValueError(f"x must have shape (batch_size, n_features) = ({B}, {F}) for this "
                             f"{self.core.name} stream; got {tuple(x.shape)}")
        return x if x.device == self.device else x.to(self.device)

    def _check_rows(self, name: str, rows):
        if rows is None:
            return None
        B = self.batch_size
        if isinstance(rows, torch.Tensor) and rows.dtype == torch.bool:
            if tuple(rows.shape) != (B,):
                raise ValueError(f"{name} as a mask must have shape ({B},); got {tuple(rows.shape)}")
            return rows.to(self.device)
        try:
            idx = torch.as_tensor(rows, dtype=torch.long).reshape(-1)
        except (TypeError, ValueError, RuntimeError):
            raise ValueError(f"{name} must be a bool mask of shape ({B},) or row indices; got {rows!r}") from None
        if len(idx) and (idx.min() < 0 or idx.max() >= B):
            raise ValueError(f"{name} holds row indices outside [0, {B}): {idx.tolist()}")
        mask = torch.zeros(B, dtype=torch.bool)
        mask[idx] = True
        return mask.to(self.device)


def _all_finite(x: torch.Tensor) -> bool:
    """One cheap check per update (numpy on CPU: a few torch ops cost more than the check itself)."""
    if x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64):
        # a finite sum means finite entries; a sum that overflowed is checked entry by entry
        a = x.numpy()
        return math.isfinite(np.add.reduce(a, axis=None)) or bool(np.isfinite(a).all())
    return bool(torch.isfinite(x).all())
