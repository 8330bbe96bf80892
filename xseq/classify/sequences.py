"""Sequence input for the classifier: validation, per-channel scaling statistics and padding."""
from __future__ import annotations

import numpy as np
import torch


def as_sequences(X, name: str = "X", n_features: int | None = None) -> list[np.ndarray]:
    """X: an array (n, T) (univariate) or (n, T, C), or a list of arrays (T_i,) or (T_i, C) of different
    lengths. Returns a list of float32 (T_i, C) arrays. Raises ValueError for anything else, for NaN or
    infinite values, and for a channel count other than `n_features` (when given)."""
    if X is None:
        raise ValueError(f"{name} is None: this estimator requires y to be passed, but the target y is None"
                         if name == "y" else f"{name} is None; expected sequences")
    if hasattr(X, "toarray") or type(X).__module__.startswith("scipy.sparse"):
        raise TypeError(f"{name}: sparse input is not supported; pass a dense array (n, T) or (n, T, C)")
    if isinstance(X, np.ndarray) and X.dtype == object:
        if X.ndim == 1:
            raise ValueError(f"{name} is a ragged object array: pass sequences of different lengths as a list "
                             f"of (T_i, C) arrays")
        try:
            X = X.astype(np.float64)  # an object array of numbers with a regular shape
        except (TypeError, ValueError) as e:  # the same type: scikit-learn's checks expect a TypeError for dicts
            raise type(e)(f"{name} is an object array whose entries are not all numbers ({e})") from None
    if isinstance(X, (list, tuple)):
        if not len(X):
            raise ValueError(f"{name} holds no sequences")
        seqs = [_one(x, f"{name}[{i}]") for i, x in enumerate(X)]
    else:
        try:
            arr = np.asarray(X)
        except ValueError as e:
            raise ValueError(f"{name} must be an array (n, T) or (n, T, C), or a list of (T_i, C) arrays; "
                             f"got {type(X).__name__} ({e})") from None
        if arr.dtype == object:
            raise ValueError(f"{name} is ragged: pass sequences of different lengths as a list of (T_i, C) arrays")
        if arr.ndim == 1:
            raise ValueError(f"{name} must be 2-d (n, T) or 3-d (n, T, C); got shape {arr.shape}. Reshape your "
                             f"data: X.reshape(1, -1) for one sequence, or pass a list of sequences")
        if arr.ndim in (2, 3) and arr.shape[0] and not arr.shape[1]:
            raise ValueError(f"{name} has 0 feature(s) (shape={arr.shape}) while a minimum of 1 is required "
                             f"(sequences need T >= 1 steps)")
        if arr.ndim not in (2, 3) or arr.shape[0] == 0 or arr.shape[1] == 0:
            raise ValueError(f"{name} must be an array (n, T) or (n, T, C) with n, T >= 1, or a list of "
                             f"(T_i, C) arrays; got shape {arr.shape}")
        arr = _numeric(arr, name)
        if arr.ndim == 2:
            arr = arr[..., None]
        seqs = list(arr)
    channels = {s.shape[1] for s in seqs}
    if len(channels) != 1:
        raise ValueError(f"{name}: every sequence must have the same number of channels; got {sorted(channels)}")
    C = channels.pop()
    if C == 0:
        raise ValueError(f"{name} has 0 channels (features per step); sequences need at least 1")
    if n_features is not None and C != n_features:
        raise ValueError(f"{name} has {C} channels (features per step); the classifier was fitted on "
                         f"{n_features}")
    for i, s in enumerate(seqs):
        if not np.isfinite(s).all():
            raise ValueError(f"{name}[{i}] holds NaN or infinite values; clean or impute them first")
    return seqs


def _one(x, name: str) -> np.ndarray:
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name} must be an array (T,) or (T, C); got {type(x).__name__} ({e})") from None
    if arr.dtype == object:
        raise ValueError(f"{name} must be an array (T,) or (T, C) of real numbers; got one of Python objects")
    arr = _numeric(arr, name)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise ValueError(f"{name} must be an array (T,) or (T, C) with T >= 1; got shape {arr.shape}")
    return arr


def _numeric(arr: np.ndarray, name: str) -> np.ndarray:
    if np.iscomplexobj(arr):
        raise ValueError(f"{name}: Complex data not supported")
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise ValueError(f"{name} must hold real numbers; got dtype {arr.dtype}")
    out = arr.astype(np.float32, copy=False)
    if arr.dtype.itemsize > 4 and np.isfinite(arr).all() and not np.isfinite(out).all():
        raise ValueError(f"{name} holds values beyond float32's range (|x| > 3.4e38), which the network computes in")
    return out


def channel_stats(seqs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std over every time step of every training sequence (std 0 -> 1)."""
    allv = np.concatenate(seqs).astype(np.float64)
    mean, std = allv.mean(0), allv.std(0)
    return mean.astype(np.float32), np.where(std > 0, std, 1.0).astype(np.float32)


def pad(seqs: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad with zeros to (n, T_max, C); returns the batch and the lengths (n,). The network is causal
    and reads each sequence only up to its length, so the padding value never matters."""
    lengths = torch.tensor([len(s) for s in seqs])
    out = torch.zeros(len(seqs), int(lengths.max()), seqs[0].shape[1])
    for i, s in enumerate(seqs):
        out[i, :len(s)] = torch.from_numpy(np.ascontiguousarray(s))
    return out, lengths
