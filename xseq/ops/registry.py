"""Backend registry: the plain PyTorch path is always there; fused kernels register themselves later
(CPU in csrc/cpu, CUDA in csrc/cuda) and `backend="auto"` picks the best one available for the device."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch


@dataclass
class Backend:
    name: str
    fn: Callable
    available: Callable[[torch.device], bool]
    priority: int


_REGISTRY: dict[str, dict[str, Backend]] = {}
_RESOLVED: dict[tuple, Callable] = {}  # (op, backend, device type, device index) -> fn; cleared on registration


def register_backend(op: str, name: str, fn: Callable, *, available: Callable[[torch.device], bool] | None = None,
                     priority: int = 0) -> None:
    """Add (or replace) backend `name` of `op`. `available(device)` says where it runs; `backend="auto"` takes
    the available backend of highest priority."""
    global _GENERATION
    _REGISTRY.setdefault(op, {})[name] = Backend(name, fn, available or (lambda device: True), priority)
    _RESOLVED.clear()
    _GENERATION += 1


_GENERATION = 0


def generation() -> int:
    """Bumped by every registration: callers that cache resolved functions compare it."""
    return _GENERATION


def backends(op: str) -> list[str]:
    return sorted(_REGISTRY.get(op, {}))


def resolve(op: str, backend: str, device: torch.device) -> Callable:
    """The function of `backend` ("auto" or a registered name) for `op` on `device` (a step path asks once
    per block and time step: answers are cached until the registry changes)."""
    key = (op, backend, device.type, device.index)
    fn = _RESOLVED.get(key)
    if fn is None:
        fn = _RESOLVED[key] = _resolve(op, backend, device)
    return fn


def _resolve(op: str, backend: str, device: torch.device) -> Callable:
    table = _REGISTRY[op]
    if backend == "auto":
        usable = [b for b in table.values() if b.available(device)]
        return max(usable, key=lambda b: b.priority).fn
    if backend not in table:
        raise ValueError(f"backend must be 'auto' or one of {backends(op)} for {op}; got {backend!r}")
    chosen = table[backend]
    if not chosen.available(device):
        raise ValueError(f"backend {backend!r} for {op} is not available on device {device}")
    return chosen.fn


def keep_for_backward(*tensors: torch.Tensor) -> bool:
    """Whether a fused kernel's forward must keep what its backward pass needs: only where a gradient can be
    asked for. Decided by the caller, because inside autograd.Function.forward needs_input_grad ignores
    torch.no_grad."""
    return torch.is_grad_enabled() and any(x.requires_grad for x in tensors)
