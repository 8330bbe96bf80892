"""Observation flattening and action distributions for Gymnasium spaces.

Observations: Box (flattened), Discrete (one-hot), MultiDiscrete (one-hot per part), Tuple and Dict (their
parts flattened and concatenated), i.e. gymnasium.spaces.flatten, applied to a batch (one row per env).
Actions: Discrete (categorical), MultiDiscrete (independent categoricals), Box (diagonal Gaussian with a
learned, state-independent log std; samples are clipped to the bounds only when sent to the env)."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from gymnasium import spaces
from gymnasium.spaces.utils import flatdim, flatten
from gymnasium.vector.utils import batch_space as stacked_space
from gymnasium.vector.utils import iterate
from torch import nn

OBS_SPACES = (spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.Tuple, spaces.Dict)
ACTION_SPACES = (spaces.Discrete, spaces.MultiDiscrete, spaces.Box)


def linear(x: torch.Tensor, layer: nn.Linear) -> torch.Tensor:
    """layer(x); without autograd on CPU, through numpy (a torch op call costs ~20 us here, numpy ~3 us):
    the acting path at batch 1 is a handful of such calls."""
    if torch.is_grad_enabled() or x.device.type != "cpu" or x.dtype != torch.float32:
        return F.linear(x, layer.weight, layer.bias)
    cached = layer.__dict__.get("_numpy_views")
    w, b = layer.weight, layer.bias
    if cached is None or cached[0] is not w or cached[1] is not b:  # views of the live parameters (in-place
        cached = layer.__dict__["_numpy_views"] = (w, b, w.detach().numpy().T, b.detach().numpy())  # updates show)
    return torch.from_numpy(x.numpy() @ cached[2] + cached[3])


def check_obs_space(space) -> int:
    """The flat observation size; a clear error for spaces we do not flatten."""
    def walk(s):
        if isinstance(s, spaces.Tuple):
            for p in s.spaces:
                walk(p)
        elif isinstance(s, spaces.Dict):
            for p in s.spaces.values():
                walk(p)
        elif not isinstance(s, (spaces.Box, spaces.Discrete, spaces.MultiDiscrete)):
            raise ValueError(f"unsupported observation space {s}; supported: Box, Discrete, MultiDiscrete and "
                             f"Tuple/Dict of them")
    walk(space)
    return flatdim(space)


class BatchSpaces:
    """batch_spaces(n): the space of n stacked observations of `space`, built once per n; None for Box
    observations (flatten_batch does not need it for them)."""

    def __init__(self, space):
        self.space, self.cache = space, {}

    def __call__(self, n: int):
        if isinstance(self.space, spaces.Box):
            return None
        if n not in self.cache:
            self.cache[n] = stacked_space(self.space, n)
        return self.cache[n]


def flatten_batch(space, batch_space, obs) -> np.ndarray:
    """obs as a vector env returns it (leading env dimension) -> float32 (num_envs, flatdim)."""
    if isinstance(space, spaces.Box):
        arr = np.asarray(obs, dtype=np.float32)
        return arr.reshape(arr.shape[0], -1)
    return np.stack([flatten(space, o) for o in iterate(batch_space, obs)]).astype(np.float32)


class ActionHead(nn.Module):
    """features (..., d) -> a torch distribution over actions; `log_prob` and `entropy` summed over action
    parts, so each is one number per env step."""

    def __init__(self, space, d: int):
        super().__init__()
        if not isinstance(space, ACTION_SPACES):
            raise ValueError(f"unsupported action space {space}; supported: Discrete, MultiDiscrete, Box")
        self.space = space
        if isinstance(space, spaces.Discrete):
            self.kind, self.sizes = "discrete", [int(space.n)]
        elif isinstance(space, spaces.MultiDiscrete):
            if space.nvec.ndim != 1:
                raise ValueError(f"unsupported action space {space}: MultiDiscrete must be 1-d")
            self.kind, self.sizes = "multidiscrete", [int(n) for n in space.nvec]
        else:
            if not (np.all(np.isfinite(space.low)) and np.all(np.isfinite(space.high))):
                raise ValueError(f"unsupported action space {space}: a Box action space needs finite bounds")
            self.kind, self.sizes = "box", [int(np.prod(space.shape))]
            self.log_std = nn.Parameter(torch.zeros(self.sizes[0]))
        self.proj = nn.Linear(d, sum(self.sizes))
        nn.init.orthogonal_(self.proj.weight, gain=0.01)
        nn.init.zeros_(self.proj.bias)

    def dist(self, feats: torch.Tensor) -> "Dist":
        out = linear(feats, self.proj)
        if self.kind == "box":
            return Dist(self.kind, mean=out, std=self.log_std.exp().expand_as(out))
        return Dist(self.kind, logits=[out] if len(self.sizes) == 1 else list(out.split(self.sizes, dim=-1)))

    def to_env(self, action: torch.Tensor) -> np.ndarray:
        a = action.detach().cpu().numpy()  # no copy for a CPU tensor
        if self.kind == "discrete":
            return a[..., 0].astype(np.int64)
        if self.kind == "multidiscrete":
            return a.astype(np.int64)
        a = a.reshape(a.shape[0], *self.space.shape)
        return np.clip(a, self.space.low, self.space.high).astype(self.space.dtype)

    @property
    def action_dim(self) -> int:
        """Stored width of one action: 1 for Discrete, parts for MultiDiscrete, the Box size."""
        return len(self.sizes) if self.kind != "box" else self.sizes[0]


class Dist:
    """A small distribution over one env step's action: sample, mode, log_prob and entropy, each reduced
    over action parts. Actions are float tensors (..., action_dim)."""

    def __init__(self, kind, logits=None, mean=None, std=None):
        self.kind, self.logits = kind, logits
        if kind == "box":
            self.normal = torch.distributions.Normal(mean, std, validate_args=False)

    @property
    def cats(self):
        """The categoricals, built at first use (the mode needs only the logits)."""
        if "_cats" not in self.__dict__:
            self._cats = [torch.distributions.Categorical(logits=lg, validate_args=False) for lg in self.logits]
        return self._cats

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draws from the agent's own generator, so that agents in one process do not share a stream."""
        if self.kind == "box":
            mean, std = self.normal.mean, self.normal.stddev
            return mean + std * torch.randn(mean.shape, generator=generator, dtype=mean.dtype)
        draws = [torch.multinomial(c.probs.reshape(-1, c.probs.shape[-1]), 1, generator=generator)
                 .reshape(c.probs.shape[:-1]) for c in self.cats]
        return torch.stack(draws, dim=-1).float()

    def mode(self) -> torch.Tensor:
        if self.kind == "box":
            return self.normal.mean
        if len(self.logits) == 1:
            return self.logits[0].argmax(-1, keepdim=True).float()
        return torch.stack([lg.argmax(-1) for lg in self.logits], dim=-1).float()

    def log_prob(self, action: torch.Tensor) -> torch.Tensor:
        if self.kind == "box":
            return self.normal.log_prob(action).sum(-1)
        return sum(c.log_prob(action[..., i].long()) for i, c in enumerate(self.cats))

    def entropy(self) -> torch.Tensor:
        if self.kind == "box":
            return self.normal.entropy().sum(-1)
        return sum(c.entropy() for c in self.cats)
