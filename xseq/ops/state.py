"""Recurrent states of the cells, in the paper's stabilised form: the true cell state is C * exp(m)."""
from __future__ import annotations

from typing import NamedTuple

import torch


class MLSTMState(NamedTuple):
    """C: (B, H, Dqk, Dv), n: (B, H, Dqk), m: (B, H). m = -inf means "nothing stored yet"."""
    C: torch.Tensor
    n: torch.Tensor
    m: torch.Tensor


class SLSTMState(NamedTuple):
    """c, n, m, h: each (B, H, Dh). m = -inf means "nothing stored yet"."""
    c: torch.Tensor
    n: torch.Tensor
    m: torch.Tensor
    h: torch.Tensor
