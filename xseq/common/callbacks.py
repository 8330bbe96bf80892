"""Lightning callbacks the applications share, and what makes a fit resumable after it was killed.

  KeepBest             a copy of the network's weights at its best validation score (kept in checkpoints too)
  Resumable            what a checkpoint needs beyond Lightning's own state (weights, optimizer, scheduler, loop
                       progress, the other callbacks) to continue exactly: the global RNG states (torch, NumPy,
                       Python) and named torch Generators (e.g. a DataLoader's shuffling), whether the run had
                       already stopped early, and a description of the fit that a later fit compares with its own
  AtomicCheckpointIO   writes a checkpoint to a temporary file beside it, then renames it into place: a run killed
                       while saving leaves the previous checkpoint whole (Lightning's own writes through a file in
                       the system's temporary folder, which is a copy, not a rename, where that is another disk)
  epoch_checkpoint     the ModelCheckpoint that rewrites DIR/last.ckpt at the end of every epoch
  find_resumable       DIR/last.ckpt if a compatible fit wrote it, None if there is none, else a ValueError
  checkpointing        both: the checkpoint to resume from, and the callbacks of a fit that checkpoints to DIR
  settings_of, digest  the two parts of a fit's description: its settings and a hash of its data
"""
from __future__ import annotations

import copy
import hashlib
import math
import os
import random
from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from .checkpoints import safe_load

LAST = "last.ckpt"
# estimator parameters that change neither what is learned nor where: a checkpoint written with other values of
# these is resumed (threads may change the last bits of a float32 sum, so a run resumed on another thread count
# matches the uninterrupted one only to rounding)
NOT_COMPARED = ("verbose", "progress_bar", "checkpoint_dir", "threads")


class KeepBest(L.Callback):
    """Watches `monitor` after every validation (sanity checks excluded) and keeps a copy of
    `module.net.state_dict()` whenever it improves on the best so far. `initial_score`/`initial_state`
    seed it with the untrained network (the forecaster: training may only improve on its linear path, as
    judged on validation); by default the first validation is kept. After fit, `best_state` is None only if
    no validation ever ran or none improved on the seed, and `best_epoch` is -1 for the seed. Its state
    travels in Lightning checkpoints, so a resumed fit keeps the best of the whole run."""

    def __init__(self, monitor: str = "val_loss", initial_score: float = math.inf, initial_state: dict | None = None):
        self.monitor, self.best_score, self.best_state, self.best_epoch = monitor, initial_score, initial_state, -1

    def on_validation_end(self, trainer, module):
        if trainer.sanity_checking:
            return
        score = trainer.callback_metrics.get(self.monitor)
        if score is not None and float(score) < self.best_score:
            self.best_score, self.best_epoch = float(score), trainer.current_epoch
            self.best_state = copy.deepcopy(module.net.state_dict())

    def state_dict(self) -> dict:
        return {"monitor": self.monitor, "best_score": self.best_score, "best_epoch": self.best_epoch,
                "best_state": self.best_state}

    def load_state_dict(self, state: dict) -> None:
        self.best_score, self.best_epoch = float(state["best_score"]), int(state["best_epoch"])
        self.best_state = state["best_state"]


def rng_states() -> dict:
    """The global random states of torch (CPU, and every CUDA device once CUDA is in use), NumPy and Python, as
    tensors and plain data."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else None
    return {"torch": torch.get_rng_state(), "cuda": cuda, "python": random.getstate(),
            "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                      "has_gauss": int(has_gauss), "cached_gaussian": float(cached)}}


def set_rng_states(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda")
    if cuda is not None and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
    random.setstate((state["python"][0], tuple(state["python"][1]), state["python"][2]))
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))


class Resumable(L.Callback):
    """Makes Lightning's checkpoints enough to continue a fit exactly, and says which fit wrote them.

    info: plain data describing the fit (what find_resumable compares: e.g. the estimator, its settings and a
    digest of its data); fitted: what the estimator needs to rebuild beside the weights (scaling, classes), kept
    in the checkpoint for the record; generators: torch Generators whose state must continue (a DataLoader's
    shuffling). Saved with every checkpoint, put back when Lightning restores one (before the first batch
    is drawn): the global RNG states (dropout), the generators, and whether the run had stopped (early
    stopping), so that a run resumed from its final checkpoint ends there too."""

    def __init__(self, info: dict, fitted: dict | None = None, generators: dict[str, torch.Generator] | None = None):
        self.info, self.fitted, self.generators = info, fitted or {}, dict(generators or {})
        self._trainer, self._stopped = None, False

    @property
    def state_key(self) -> str:
        return "xseq.Resumable"

    def setup(self, trainer, pl_module, stage) -> None:
        self._trainer = trainer

    def state_dict(self) -> dict:
        return {"info": self.info, "fitted": self.fitted, "rng": rng_states(),
                "generators": {name: g.get_state() for name, g in self.generators.items()},
                "stopped": bool(self._trainer is not None and self._trainer.should_stop)}

    def load_state_dict(self, state: dict) -> None:
        set_rng_states(state["rng"])
        for name, g in self.generators.items():
            g.set_state(state["generators"][name])
        self._stopped = bool(state["stopped"])

    def on_train_start(self, trainer, pl_module) -> None:
        if self._stopped:  # the checkpoint was written after early stopping: nothing is left to train
            trainer.should_stop = True


class AtomicCheckpointIO(TorchCheckpointIO):
    """torch.save to DIR/.NAME.tmpPID, then os.replace onto DIR/NAME (local paths)."""

    def save_checkpoint(self, checkpoint: dict, path, storage_options=None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options; got {storage_options!r}")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
        try:
            torch.save(checkpoint, tmp)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)


def epoch_checkpoint(dirpath) -> L.pytorch.callbacks.ModelCheckpoint:
    """Rewrites dirpath/last.ckpt at the end of every training epoch (after that epoch's validation)."""
    return L.pytorch.callbacks.ModelCheckpoint(dirpath=str(dirpath), filename=Path(LAST).stem, monitor=None,
                                               save_top_k=1, save_on_train_epoch_end=True,
                                               enable_version_counter=False)


def settings_of(estimator, ignore=NOT_COMPARED) -> dict:
    """The estimator's parameters (those that change what it learns) as {name: repr(value)}."""
    return {k: repr(v) for k, v in sorted(estimator.get_params(deep=False).items()) if k not in ignore}


def digest(*arrays) -> str:
    """A SHA-256 of arrays or tensors (their dtypes, shapes and bytes; None allowed) as a hex string."""
    h = hashlib.sha256()
    for a in arrays:
        if a is None:
            h.update(b"none;")
            continue
        a = np.ascontiguousarray(a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a))
        h.update(f"{a.dtype.str}{a.shape};".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def find_resumable(dirpath, info: dict, name: str = "checkpoint_dir") -> Path | None:
    """dirpath/last.ckpt when a fit described by `info` wrote it (resume from it), None when there is no such
    file (start afresh). A checkpoint of another fit (other settings, other data, another stage) is a ValueError
    naming `name` and what differs: it is never silently overwritten nor resumed."""
    path = Path(dirpath) / LAST
    if not path.is_file():
        return None
    ck = safe_load(path, "xseq", label="")
    state = ck.get("callbacks", {}).get("xseq.Resumable") if isinstance(ck, dict) else None
    if not isinstance(state, dict) or not isinstance(state.get("info"), dict):
        raise ValueError(f"{name}={str(dirpath)!r} holds {LAST}, which no xseq fit wrote: pass an empty folder (or "
                         f"one a fit of the same data and settings wrote, to resume it)")
    diff = _differences(state["info"], info)
    if diff:
        raise ValueError(f"{name}={str(dirpath)!r} holds the checkpoint of another fit (it differs in "
                         f"{'; '.join(diff[:6])}): pass an empty folder, or fit the same data with the same settings "
                         f"to resume it")
    return path


def _differences(saved: dict, ours: dict) -> list[str]:
    out = []
    for key in sorted(set(saved) | set(ours)):
        a, b = saved.get(key), ours.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += [f"{k}: {b.get(k)} here, {a.get(k)} in the checkpoint"
                    for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
        elif a != b:
            out.append("the data" if key == "data" else f"{key}: {b!r} here, {a!r} in the checkpoint")
    return out


def checkpointing(dirpath, info: dict, fitted: dict | None = None, generators: dict | None = None,
                  name: str = "checkpoint_dir") -> tuple[Path | None, list]:
    """For a fit that checkpoints into dirpath: (the checkpoint to resume from, None to start afresh; see
    find_resumable) and its callbacks (Resumable, then the epoch_checkpoint writing dirpath/last.ckpt)."""
    return find_resumable(dirpath, info, name), [Resumable(info, fitted, generators), epoch_checkpoint(dirpath)]
