"""XLSTMEncoder: a stack of xLSTM blocks with a parallel face (`forward`) and a step-wise face (`step`)."""
from __future__ import annotations

import operator

import torch
import torch.nn.functional as F
from tensordict import TensorDict
from torch import nn

from .. import ops
from ..ops import registry
from ..ops.checks import check_finite, check_float
from ..ops.numba_layers import block_views, fast_input, layernorm_np, view
from .config import XLSTMConfig
from .mlstm_block import MLSTMBlock
from .rows import where_rows
from .slstm_block import SLSTMBlock

_BACKEND = operator.attrgetter("backend")


class XLSTMEncoder(nn.Module):
    """Pre-LayerNorm residual xLSTM blocks in the layout of `config`, then a final LayerNorm.

    y, state = enc(x, state=None)        x: (B, T, d_model) -> y: (B, T, d_model)
    y_t, state = enc.step(x_t, state)    x_t: (B, d_model)  -> y_t: (B, d_model)
    The state is a TensorDict with batch size [B]: one entry per block ("block_0", ...) holding its cell
    state (mLSTM: C, n, m; sLSTM: c, n, m, h) and its conv buffer ("conv"). Passing the returned state to the
    next call continues the sequence; `reset_state` restarts chosen rows.
    """

    def __init__(self, config: XLSTMConfig):
        super().__init__()
        if not isinstance(config, XLSTMConfig):
            raise ValueError(f"config must be an XLSTMConfig; got {type(config).__name__}")
        self.config = config
        d, n = config.d_model, config.n_blocks
        self.blocks = nn.ModuleList(
            MLSTMBlock(d, config.mlstm, n, config.dropout) if kind == "m"
            else SLSTMBlock(d, config.slstm, n, config.dropout)
            for kind in config.block_types)
        self.norm = nn.LayerNorm(d, bias=False)
        self._keys = [f"block_{i}" for i in range(len(self.blocks))]
        self._norm_shape = (d,)

    def _apply(self, fn, *args, **kwargs):  # .to(), .float(), ...: the plan's views and device go stale
        self.__dict__.pop("_step_cache", None)
        return super()._apply(fn, *args, **kwargs)

    @property
    def d_model(self) -> int:
        return self.config.d_model

    def init_state(self, batch_size: int, device=None, dtype=None) -> TensorDict:
        """The state before any input: zeros, with the stabilisers m at -inf. Cell states are float32;
        `dtype` (default: the parameters' dtype) is for the conv buffers, which hold inputs."""
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int; got {batch_size!r}")
        p = next(self.parameters())
        device = p.device if device is None else torch.device(device)
        dtype = p.dtype if dtype is None else dtype
        blocks = {f"block_{i}": blk.init_state(batch_size, device, dtype) for i, blk in enumerate(self.blocks)}
        return TensorDict(blocks, batch_size=[batch_size], device=device)

    def reset_state(self, state: TensorDict, mask: torch.Tensor) -> TensorDict:
        """Rows where mask (B,) is True go back to the initial state. Uses torch.where, never a product with
        (1 - mask): the stabiliser m may be -inf and -inf * 0 is NaN."""
        B = state.batch_size[0]
        if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool or tuple(mask.shape) != (B,):
            raise ValueError(f"mask must be a bool tensor of shape ({B},); got "
                             f"{getattr(mask, 'dtype', type(mask).__name__)} {tuple(getattr(mask, 'shape', ()))}")
        return where_rows(mask, self.init_state(B, device=mask.device, dtype=None), state)

    def forward(self, x: torch.Tensor, state: TensorDict | None = None):
        self._check_input("x", x, 3)
        self._check_state(state, x.shape[0])
        x_in, new = x, {}
        try:
            for i, blk in enumerate(self.blocks):
                key = f"block_{i}"
                x, new[key] = blk(x, None if state is None else state[key])
        except ValueError as err:  # an op refused a NaN/inf that the blocks made from finite input
            if "NaN or inf" not in str(err):
                raise
            raise _overflow("x", x_in) from err
        y = self.norm(x)
        _check_result("x", x_in, y)
        return y, TensorDict(new, batch_size=[x.shape[0]], device=x.device)

    def step(self, x: torch.Tensor, state: TensorDict | None = None):
        """One time step: x (B, d_model) -> y (B, d_model) and the new state. Each block steps through the
        op "{m,s}lstm_block_step" of xseq.ops on its configured backend: with "auto" on a CPU, small float32
        batches without autograd run one compiled call per block."""
        self._check_input("x", x, 2)
        if state is None:
            state = self.init_state(x.shape[0], device=x.device, dtype=x.dtype)
        elif not self._returned_last(state):  # a state this encoder just returned was checked when built
            self._check_state(state, x.shape[0])
        y, new = self.step_unchecked(x, state)
        _check_result("x", x, y)
        return y, new

    def step_unchecked(self, x: torch.Tensor, state: TensorDict):
        """step() without validating x and state: for callers that own both (xseq.Stream)."""
        c = self.__dict__.get("_step_cache")
        if c is None:  # a fresh encoder, or one unpickled or copied (the cache does not travel)
            c = self.__dict__["_step_cache"] = _StepCache()
        plan = c.plan
        if plan is None or plan.device != x.device or plan.generation != registry.generation() or any(
                map(operator.is_not, map(_BACKEND, plan.blocks), plan.backends)):
            plan = c.plan = _StepPlan(self, x.device)
        B = x.shape[0]
        views = plan.fused_views(x)
        if views is not None:  # every block takes its compiled step: numpy arrays from block to block
            last = c.last
            xa = view(x)
            arrays = []
            for i, (key, blk, kernel, names, w) in enumerate(zip(self._keys, plan.blocks, plan.kernels, plan.names,
                                                                 views)):
                sub = state._get_str(key, None)
                if last is not None and last[1][i] is sub:
                    a = last[2][i]  # the state this encoder returned last: its arrays, no conversions
                else:
                    keys = sub.keys()
                    a = tuple(view(sub[n]) if n in keys else None for n in names)
                xa, a = kernel(blk, w, xa, a)
                arrays.append(a)
            y = torch.from_numpy(layernorm_np(xa, plan.norm_view, plan.norm.eps))
            bs = torch.Size([B])
            entries = [_make_td({n: torch.from_numpy(v) for n, v in zip(names, a) if v is not None}, bs)
                       for names, a in zip(plan.names, arrays)]
        else:
            entries, arrays = [], None
            for key, blk, fn in zip(self._keys, plan.blocks, plan.fns):
                x, sub = fn(blk, x, state[key], False)
                entries.append(sub)
            y = F.layer_norm(x, self._norm_shape, self.norm.weight, None, self.norm.eps)
        out = _make_td(dict(zip(self._keys, entries)), torch.Size([B]))
        c.last = (out, entries, arrays)
        return y, out

    def _returned_last(self, state) -> bool:
        """Whether `state` is the state the last step returned, with every block's entry still the one it
        built (an entry replaced since then is checked again)."""
        c = self.__dict__.get("_step_cache")
        last = None if c is None else c.last
        if last is None or last[0] is not state:
            return False
        return all(state._get_str(key, None) is sub for key, sub in zip(self._keys, last[1]))

    def fused_step_applies(self, x: torch.Tensor) -> bool:
        """Whether step() runs every block's fused compiled step for an input like x, in the current grad mode."""
        return _StepPlan(self, x.device).fused_views(x) is not None

    def stream(self, batch_size: int = 1, device=None):
        """An xseq.Stream that feeds this encoder one observation (B, d_model) at a time."""
        from .stream import Stream
        from .streaming import EncoderCore
        device = device if device is not None else next(self.parameters()).device
        return Stream(EncoderCore(self), batch_size, device=device)

    def _state_shapes(self, batch_size: int) -> dict:
        """Leaf shapes of a valid state, built once per batch size (step() checks the state every call)."""
        cache = self.__dict__.setdefault("_shape_cache", {})
        if batch_size not in cache:
            expected = self.init_state(batch_size, device="meta")
            cache[batch_size] = {k: tuple(v.shape) for k, v in expected.items(include_nested=True, leaves_only=True)}
        return cache[batch_size]

    def _check_input(self, name: str, x: torch.Tensor, ndim: int) -> None:
        check_float(name, x)
        layout = "(B, T, d_model)" if ndim == 3 else "(B, d_model)"
        if x.dim() != ndim or x.shape[-1] != self.d_model or x.shape[0] == 0 or (ndim == 3 and x.shape[1] == 0):
            raise ValueError(f"{name} must be {layout} with d_model = {self.d_model}, B >= 1"
                             f"{' and T >= 1' if ndim == 3 else ''}; got {tuple(x.shape)}")
        want = self.norm.weight.dtype
        if x.dtype != want and not torch.is_autocast_enabled(x.device.type):
            raise ValueError(f"{name} must have the encoder's dtype {want} (its parameters'); got {x.dtype}: cast x, "
                             f"or the encoder with .to({x.dtype})")
        check_finite(name, x)

    def _check_state(self, state, batch_size: int) -> None:
        if state is None:
            return
        if not isinstance(state, TensorDict):
            raise ValueError(f"state must be a TensorDict from init_state/forward/step; got {type(state).__name__}")
        want = self._state_shapes(batch_size)
        got = {k: tuple(v.shape) for k, v in state.items(include_nested=True, leaves_only=True)}
        if want.keys() != got.keys():
            missing, extra = sorted(map(str, want.keys() - got.keys())), sorted(map(str, got.keys() - want.keys()))
            raise ValueError(f"state does not fit this encoder: missing entries {missing}, unexpected {extra}")
        for key, shape in want.items():
            if got[key] != shape:
                name = ".".join(key) if isinstance(key, tuple) else key
                raise ValueError(f"state[{name!r}] must have shape {shape} for batch size {batch_size}; "
                                 f"got {got[key]}")


def _make_td(data: dict, batch_size: torch.Size) -> TensorDict:
    """A TensorDict over `data` without per-leaf validation (the shapes are the blocks')."""
    return _NEW_TD(data, batch_size=batch_size)


_NEW_TD = getattr(TensorDict, "_new_unsafe", TensorDict)  # TensorDict itself on older tensordict versions


class _StepCache:
    """What step() keeps between calls (in the encoder's __dict__): its plan and the state it returned last
    with that state's block entries and arrays. Copies and pickles start empty."""
    __slots__ = ("plan", "last")

    def __init__(self):
        self.plan = None
        self.last = None  # (state, its block entries, their arrays or None)

    def __deepcopy__(self, memo):
        return _StepCache()

    def __reduce__(self):
        return (_StepCache, ())


class _StepPlan:
    """The block-step functions of an encoder's blocks, resolved once per device, backends and registry
    generation, with what their fused (compiled) forms need."""

    def __init__(self, encoder: XLSTMEncoder, device: torch.device):
        self.device, self.generation = device, registry.generation()
        self.blocks = list(encoder.blocks)
        self.backends = [blk.backend for blk in self.blocks]
        self.fns = [ops.resolve(blk.step_op, blk.backend, device) for blk in self.blocks]
        fused = all(hasattr(fn, "kernel") for fn in self.fns)
        self.kernels = [fn.kernel for fn in self.fns] if fused else None
        self.names = [fn.names for fn in self.fns] if fused else None
        self.norm = encoder.norm
        self._norm_weight = self.norm.weight
        self.norm_view = view(self._norm_weight) if _cpu32(self._norm_weight) else None

    def fused_views(self, x: torch.Tensor):
        """Per block the weight views of its fused step, or None where some block must take the PyTorch step."""
        if self.kernels is None or not fast_input(x):
            return None
        weight = self.norm._parameters["weight"]
        if weight is not self._norm_weight:  # the final norm's weight was replaced
            self._norm_weight = weight
            self.norm_view = view(weight) if _cpu32(weight) else None
        if self.norm_view is None:
            return None
        views = [block_views(blk) for blk in self.blocks]
        return None if None in views else views


def _cpu32(t: torch.Tensor) -> bool:
    return t.dtype is torch.float32 and t.device.type == "cpu"


def _overflow(name: str, x: torch.Tensor) -> ValueError:
    big = float(x.detach().abs().max().float()) if x.numel() else 0.0
    return ValueError(f"{name} is finite, but the encoder's arithmetic in {x.dtype} overflowed on it (|{name}| up to "
                      f"{big:.3g}): rescale {name} (standardise it, or divide by its scale)")


def _check_result(name: str, x: torch.Tensor, y: torch.Tensor) -> None:
    """Finite input must give a finite result: NaN is reported, never returned."""
    try:
        check_finite("y", y)
    except ValueError:
        raise _overflow(name, x) from None
