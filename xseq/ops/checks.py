"""Input validation shared by the ops: every error names the argument and what was expected."""
from __future__ import annotations

import math
from typing import Sequence

import torch

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def check_float(name: str, x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor; got {type(x).__name__}")
    if x.dtype not in FLOAT_DTYPES:
        raise ValueError(f"{name} must be a floating tensor (float16, bfloat16, float32 or float64); got {x.dtype}")


def check_shape(name: str, x: torch.Tensor, expected: Sequence[int | None], layout: str) -> None:
    """`expected` holds sizes, None for "any"; `layout` is the symbolic form for the message."""
    check_float(name, x)
    if x.dim() != len(expected) or any(e is not None and e != s for e, s in zip(expected, x.shape)):
        want = tuple("?" if e is None else e for e in expected)
        raise ValueError(f"{name} must be {layout} = {want}; got {tuple(x.shape)}")


def check_finite(name: str, x: torch.Tensor, allow_neg_inf: bool = False) -> None:
    """NaN (and +-inf) in inputs are reported, never propagated. `allow_neg_inf` is for the stabiliser m,
    whose initial value is -inf by definition. One pass in the usual case: a finite sum means no NaN or inf
    (either would make the sum NaN or infinite); only a non-finite sum (bad values, -inf where allowed, or an
    overflow of large finite values) pays for the elementwise check."""
    if x.numel() and not x.is_complex():
        d = x.detach()
        total = float(d.sum(dtype=torch.float64) if d.dtype in (torch.float16, torch.bfloat16) else d.sum())
        if math.isfinite(total):
            return
    if allow_neg_inf:
        bad = torch.isnan(x) | (x == float("inf"))
    else:
        bad = ~torch.isfinite(x)
    if bool(bad.any()):
        n = int(bad.sum())
        what = "NaN or +inf" if allow_neg_inf else "NaN or inf"
        raise ValueError(f"{name} contains {n} {what} value(s)")


def compute_dtype(*xs: torch.Tensor) -> torch.dtype:
    """State and accumulation run in float32, or float64 when any input is float64."""
    return torch.float64 if any(x.dtype == torch.float64 for x in xs) else torch.float32


def check_same_device(**tensors: torch.Tensor) -> None:
    devices = {name: t.device for name, t in tensors.items() if t is not None}
    if len(set(devices.values())) > 1:
        raise ValueError(f"all inputs must be on one device; got {', '.join(f'{k}: {v}' for k, v in devices.items())}")


def check_device(name: str, x: torch.Tensor, device: torch.device) -> None:
    if x.device != device:
        raise ValueError(f"{name} must be on {device} like the inputs; got {x.device}")
