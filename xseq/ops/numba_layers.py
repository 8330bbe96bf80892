"""Compiled (numba) layers for the fused block steps of mlstm/block_step.py and slstm/block_step.py: a linear
map, LayerNorm, per-head norm, one causal-conv step, block-diagonal projection, swish, on small batches of
numpy arrays. Plain loops, not BLAS: the products are small, and a threaded BLAS next to torch's own threads
oversubscribes the cores."""
from __future__ import annotations

import math
import operator

import numba
import numpy as np
import torch

# reassociation lets reductions vectorise; no 'nnan'/'ninf': the stabiliser m is -inf in a fresh state
_FM = {"reassoc", "contract", "nsz", "arcp"}
NJ = dict(cache=True, nogil=True, fastmath=_FM)
ZERO = np.float32(0.0)  # a float32 zero: a 0.0 literal would make a float32 loop accumulate in float64


@numba.njit(**NJ)
def linear(x, W, out):
    """out (B, O) = x (B, I) @ W (O, I)^T: four rows of W at a time against one read of x, summed in float64
    (float32 sums would be faster, but they double the step's distance from the parallel forward)."""
    B, I = x.shape
    O = W.shape[0]
    O4 = O - O % 4
    for o in range(0, O4, 4):  # each block of W rows is read once for the whole batch
        w0, w1, w2, w3 = W[o], W[o + 1], W[o + 2], W[o + 3]
        for b in range(B):
            xb = x[b]
            a0 = a1 = a2 = a3 = 0.0
            for i in range(I):
                xi = np.float64(xb[i])
                a0 += xi * w0[i]
                a1 += xi * w1[i]
                a2 += xi * w2[i]
                a3 += xi * w3[i]
            out[b, o], out[b, o + 1], out[b, o + 2], out[b, o + 3] = a0, a1, a2, a3
    for o in range(O4, O):
        for b in range(B):
            acc = 0.0
            for i in range(I):
                acc += x[b, i] * W[o, i]
            out[b, o] = acc


@numba.njit(**NJ)
def layernorm(x, w, eps, out):
    """LayerNorm over the last axis of (B, N) with a weight and no bias."""
    B, N = x.shape
    for b in range(B):
        mu = 0.0
        for i in range(N):
            mu += x[b, i]
        mu /= N
        var = 0.0
        for i in range(N):
            d = x[b, i] - mu
            var += d * d
        inv = 1.0 / math.sqrt(var / N + eps)
        for i in range(N):
            out[b, i] = (x[b, i] - mu) * inv * w[i]


@numba.njit(**NJ)
def headnorm(h, w, H, eps, out):
    """Per-head LayerNorm of (B, H*D) with a weight (MultiHeadNorm)."""
    B, N = h.shape
    D = N // H
    for b in range(B):
        for hh in range(H):
            s = hh * D
            mu = 0.0
            for i in range(D):
                mu += h[b, s + i]
            mu /= D
            var = 0.0
            for i in range(D):
                d = h[b, s + i] - mu
                var += d * d
            inv = 1.0 / math.sqrt(var / D + eps)
            for i in range(D):
                out[b, s + i] = (h[b, s + i] - mu) * inv * w[s + i]


@numba.njit(**NJ)
def conv_step(x, state, w, bias, out, new_state):
    """Causal depthwise conv, one step: window = [state (B, K-1, C), x], out = sum_k window[k] w[:, k] + bias."""
    B, C = x.shape
    K = w.shape[1]
    for b in range(B):
        for c in range(C):
            acc = bias[c]
            for k in range(K - 1):
                acc += state[b, k, c] * w[c, k]
            acc += x[b, c] * w[c, K - 1]
            out[b, c] = acc
        for k in range(K - 2):
            for c in range(C):
                new_state[b, k, c] = state[b, k + 1, c]
        if K > 1:
            for c in range(C):
                new_state[b, K - 2, c] = x[b, c]


@numba.njit(**NJ)
def headwise(x, W, out):
    """Block-diagonal linear: x (B, n*a) with W (n, a, c) -> out (B, n*c)."""
    B = x.shape[0]
    n, a, c = W.shape
    for bb in range(B):
        for blk in range(n):
            for j in range(c):
                acc = ZERO
                for i in range(a):
                    acc += x[bb, blk * a + i] * W[blk, i, j]
                out[bb, blk * c + j] = acc


@numba.njit(inline="always")
def silu(v):
    return v / (1.0 + math.exp(-v))


@numba.njit(inline="always")
def logsigmoid(v):
    if v >= 0:
        return -math.log1p(math.exp(-v))
    return v - math.log1p(math.exp(v))


@numba.njit(**NJ)
def layernorm_np(x, w, eps):
    """LayerNorm without bias of x (B, N) into a new array."""
    out = np.empty_like(x)
    layernorm(x, w, eps, out)
    return out


def view(t):
    """A numpy view of a CPU tensor (no copy)."""
    return t.detach().numpy() if t.requires_grad else t.numpy()


class _Cache:
    """What a block's fused step keeps between calls (in the block's __dict__): numpy views of its weights with
    the data pointers they were taken from, and the state it returned last with that state's arrays. Copies
    and pickles of the block start empty (views of another block's memory are no use to them)."""

    __slots__ = ("weights", "last")

    def __init__(self):
        # each field is replaced by one store of a whole tuple, so that threads stepping the same block see
        # either the old or the new entry, never half of each
        self.weights = None  # (parameter dicts, names, parameter objects, views)
        self.last = None  # (the state a fused step returned last, its arrays)

    def __deepcopy__(self, memo):
        return _Cache()

    def __reduce__(self):
        return (_Cache, ())


def _cache(block) -> _Cache:
    c = block.__dict__.get("_fused_step_cache")
    if c is None:
        c = block.__dict__["_fused_step_cache"] = _Cache()
    return c


def weight_views(block):
    """Numpy views of `block.step_weights()` (None entries stay None), or None where a weight is not a float32
    CPU tensor. Cached per block. The cache holds the block's parameter objects and is checked against them
    at every call (dictionary reads and identity tests), so a parameter replaced (load_state_dict(assign=True),
    assignment) is taken afresh; moves and casts (.to(), .float(), ...) clear it through `forget_weights`, which
    the blocks call from Module._apply; in-place updates (training, load_state_dict) are seen at once."""
    c = _cache(block)
    cached = c.weights
    if cached is not None and all(map(operator.is_, map(dict.get, cached[0], cached[1]), cached[2])):
        return cached[3]  # every parameter is still the object the views were taken from (a C-level loop)
    slots = [(mod._parameters, name) for mod in block.modules() for name, p in mod._parameters.items()
             if p is not None]
    ws = block.step_weights()
    ok = all(w is None or (w.dtype == torch.float32 and w.device.type == "cpu") for w in ws)
    views = tuple(None if w is None else view(w) for w in ws) if ok else None
    c.weights = ([d for d, _ in slots], [name for _, name in slots], [d[name] for d, name in slots], views)
    return views


def forget_weights(block) -> None:
    """Drop the block's cached weight views (its parameters' data moved: Module._apply)."""
    block.__dict__.pop("_fused_step_cache", None)


def state_arrays(block, state, names: tuple):
    """Numpy views of state[name] for each name (None where absent). The state a block's fused step returned
    last is recognised and its arrays reused (the usual case: a stream feeding the state back)."""
    last = _cache(block).last
    if last is not None and last[0] is state:
        return last[1]
    keys = state.keys()
    return tuple(view(state[n]) if n in keys else None for n in names)


def new_state(block, arrays: tuple, names: tuple, batch_size: int):
    """The block's new state as a TensorDict over `arrays` (no copies, no per-leaf validation), remembered so
    that the next call can take its arrays back without conversions."""
    data = {n: torch.from_numpy(a) for n, a in zip(names, arrays) if a is not None}
    td = _make_td(data, batch_size=torch.Size([batch_size]))
    _cache(block).last = (td, arrays)
    return td


def _make_td(data, batch_size):
    global _MAKE_TD
    if _MAKE_TD is None:
        from tensordict import TensorDict

        _MAKE_TD = getattr(TensorDict, "_new_unsafe", TensorDict)  # without per-leaf validation where it exists
    return _MAKE_TD(data, batch_size=batch_size)


_MAKE_TD = None


MAX_BATCH = 16  # above this the PyTorch step's batched matrix products win


def fast_input(x) -> bool:
    """Whether an input can take a fused step: CPU float32 of at most MAX_BATCH rows, autograd off."""
    return (not torch.is_grad_enabled() and x.dtype is torch.float32 and x.device.type == "cpu"
            and x.shape[0] <= MAX_BATCH)


def block_views(block):
    """The block's weight views where its fused step may run (float32 CPU weights, no active dropout), else
    None."""
    if block.training and block.dropout > 0:
        return None
    return weight_views(block)


def applies(block, x):
    """The weights' numpy views where a fused block step serves this call (CPU float32 input of at most
    MAX_BATCH rows, no autograd, no active dropout, float32 CPU weights); None where the PyTorch step must run."""
    return block_views(block) if fast_input(x) else None


def register_block_step(op: str, fused_step, fused, kernel, names: tuple):
    """Register the backends of a block-step op: "torch" and "cuda" run the block's module step
    (block.torch_step); "numba" runs `fused_step` (fn(block, x, state, validate)), which exposes `applies`,
    `fused` (the numpy-level step on a state TensorDict) and `kernel` with `names` (the step on the state's
    arrays in the order of `names`: kernel(block, views, xa, arrays) -> (ya, new arrays)), which an encoder
    chains from block to block."""
    from .registry import register_backend

    def torch_step(block, x, state, validate: bool = False):
        return block.torch_step(x, state, validate)

    fused_step.applies, fused_step.fused, fused_step.kernel, fused_step.names = applies, fused, kernel, names
    register_backend(op, "torch", torch_step)
    register_backend(op, "cuda", torch_step, available=lambda device: device.type == "cuda")
    register_backend(op, "numba", fused_step, available=lambda device: device.type == "cpu", priority=10)
