"""Training windows of a panel of series of different lengths: every series (scaled) is left-padded and
concatenated into one flat tensor, a window is addressed by the flat index of its first past value, and
gather() builds a batch without per-sample Python.

Short histories (the rule behind `min_context`): a window needs at least `min_context` observed past values;
the rest of its `lookback` values are the series' first observed value repeated, and its observed mask is 0
there. With min_context == lookback nothing is padded and the network reads no mask."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class WindowBatch:
    """One batch: past (N, L), future (N, H), past_cov (N, L, C) and future_cov (N, H, C) or None,
    cross (N, S*K) or None, mask (N, L) or None, static (N, F) or None, series (N,) the series of each window."""
    past: torch.Tensor
    future: torch.Tensor
    past_cov: torch.Tensor | None
    future_cov: torch.Tensor | None
    cross: torch.Tensor | None
    mask: torch.Tensor | None
    static: torch.Tensor | None
    series: torch.Tensor

    def net_inputs(self) -> dict:
        return dict(past_cov=self.past_cov, future_cov=self.future_cov, cross=self.cross, mask=self.mask,
                    static=self.static)


def pad_front(values: np.ndarray, pad: int) -> np.ndarray:
    """Repeat the first row of `values` (T, ...) `pad` times in front of it."""
    if pad <= 0:
        return values
    return np.concatenate([np.repeat(values[:1], pad, axis=0), values], axis=0)


def context(values: np.ndarray, lookback: int, covariates: np.ndarray | None = None):
    """The last `lookback` values of one series (padded in front where shorter) and their observed mask."""
    T = len(values)
    pad = max(0, lookback - T)
    past = pad_front(values[-lookback:], pad)
    mask = np.concatenate([np.zeros(pad), np.ones(min(T, lookback))])
    cov = None if covariates is None else pad_front(covariates, pad)
    return past, mask, cov


class WindowData:
    """All series concatenated into one flat (sum (pad + T_i),) tensor, each preceded by `pad` copies of
    its first value (pad = lookback - min_context)."""

    def __init__(self, values, covariates, lookback: int, horizon: int, cross: int = 0,
                 series_len: int | None = None, n_series: int = 1, *, min_context: int | None = None,
                 static: np.ndarray | None = None):
        """values: one flat array of all series one after the other (then lengths come from series_len, as for
        aligned series), or a list of per-series arrays. covariates: the same layout with a trailing channel
        axis, or None. cross > 0: also gather the last `cross` past values of every series at the same time
        step (series aligned: n_series series of series_len steps each). static: (n_series, F) or None."""
        if isinstance(values, (list, tuple)):
            series = [np.asarray(v, dtype=np.float64) for v in values]
            covs = list(covariates) if covariates is not None else [None] * len(series)
        else:
            T = len(values) if series_len is None else series_len
            series = [values[i * T:(i + 1) * T] for i in range(len(values) // T)]
            covs = ([covariates[i * T:(i + 1) * T] for i in range(len(series))] if covariates is not None
                    else [None] * len(series))
        self.lookback, self.horizon = lookback, horizon
        self.min_context = lookback if min_context is None else min_context
        self.pad = lookback - self.min_context
        self.lengths = np.array([len(s) for s in series])
        padded = self.lengths + self.pad
        self.offsets = np.concatenate([[0], np.cumsum(padded)[:-1]]).astype(np.int64)
        self.values = torch.as_tensor(np.concatenate([pad_front(s, self.pad) for s in series]), dtype=torch.float32)
        self.mask = None
        if self.pad:
            self.mask = torch.as_tensor(np.concatenate([np.r_[np.zeros(self.pad), np.ones(T)] for T in self.lengths]),
                                        dtype=torch.float32)
        self.covariates = None
        if covs[0] is not None:
            self.covariates = torch.as_tensor(np.concatenate([pad_front(c, self.pad) for c in covs]),
                                              dtype=torch.float32)
        self.series_of = torch.as_tensor(np.repeat(np.arange(len(series)), padded), dtype=torch.long)
        self.static = None if static is None else torch.as_tensor(static, dtype=torch.float32)
        self.cross, self.n_series = cross, len(series)
        if cross and len(set(self.lengths.tolist())) != 1:
            raise ValueError("cross-series features need aligned series of one length")
        self.series_len = int(padded[0])
        self.window = torch.arange(lookback + horizon)

    def starts(self, series: int, origins: np.ndarray) -> np.ndarray:
        """Flat start indices of the windows of `series` whose first forecast step is origins[j] (an index into
        that series' values); each needs origins >= min_context and origins + horizon <= length."""
        return self.offsets[series] + self.pad + np.asarray(origins) - self.lookback

    def to(self, device):
        for name in ("values", "mask", "covariates", "series_of", "static", "window"):
            t = getattr(self, name)
            if t is not None:
                setattr(self, name, t.to(device))
        return self

    def batch(self, starts: torch.Tensor) -> WindowBatch:
        starts = torch.as_tensor(starts).to(self.values.device)
        idx = starts[:, None] + self.window
        window = self.values[idx]
        L_ = self.lookback
        past, future = window[:, :L_], window[:, L_:]
        series = self.series_of[starts]
        cross = None
        if self.cross:
            t_end = starts % self.series_len + L_  # the window's origin in the padded series, the same for all
            steps = t_end[:, None] + torch.arange(-self.cross, 0, device=starts.device)
            first = torch.arange(self.n_series, device=starts.device) * self.series_len
            cross = centre_blocks(self.values[first[None, :, None] + steps[:, None, :]])
        mask = None if self.mask is None else self.mask[idx[:, :L_]]
        static = None if self.static is None else self.static[series]
        past_cov = future_cov = None
        if self.covariates is not None:
            cov = self.covariates[idx]
            past_cov, future_cov = cov[:, :L_], cov[:, L_:]
        return WindowBatch(past, future, past_cov, future_cov, cross, mask, static, series)

    def gather(self, starts: torch.Tensor):
        """past (N, L), future (N, H), past and future covariates (or None), cross (N, S*K) or None."""
        b = self.batch(starts)
        return b.past, b.future, b.past_cov, b.future_cov, b.cross


def centre_blocks(blocks: torch.Tensor) -> torch.Tensor:
    """(N, S, K) recent values of S series -> (N, S*K), each series' block minus its own mean."""
    return (blocks - blocks.mean(dim=-1, keepdim=True)).flatten(1)


SAMPLINGS = ("windows", "series")


class EpochDraws(torch.utils.data.Dataset):
    """The training windows of one epoch as global batches of flat start indices; item b is this process's
    share of global batch b (rows rank, rank + world, ...), so that any number of processes sees the same
    global batches. set_epoch(e) draws epoch e from (seed, e) alone.

    sampling "windows": every training window once per epoch (at most `per_epoch` of them), in random order;
    "series": `per_epoch` draws, each picking a series uniformly and then one of its windows uniformly, so
    that long series do not dominate."""

    def __init__(self, pools: list[np.ndarray], batch_size: int, sampling: str, seed: int,
                 per_epoch: int | None = None, rank: int = 0, world: int = 1):
        self.pools = [p for p in pools if len(p)]
        self.all = np.concatenate(self.pools)
        self.batch_size, self.sampling, self.seed = batch_size, sampling, seed
        self.per_epoch = min(per_epoch or len(self.all), len(self.all)) if sampling == "windows" else \
            (per_epoch or len(self.all))
        self.rank, self.world = rank, world
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        rng = np.random.default_rng([self.seed, epoch])
        if self.sampling == "windows":
            draws = rng.permutation(self.all)[:self.per_epoch]
        else:
            which = rng.integers(0, len(self.pools), self.per_epoch)
            sizes = np.array([len(p) for p in self.pools])
            pick = (rng.random(self.per_epoch) * sizes[which]).astype(np.int64)
            starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
            draws = self.all[starts[which] + pick]
        self.draws = torch.as_tensor(draws, dtype=torch.long)

    def __len__(self) -> int:
        return -(-len(self.draws) // self.batch_size)

    def __getitem__(self, b: int) -> tuple[torch.Tensor, int]:
        """(this process's starts, the size of the whole global batch)."""
        batch = self.draws[b * self.batch_size:(b + 1) * self.batch_size]
        return batch[self.rank::self.world], len(batch)


def steps_per_epoch(n_train: int, batch_size: int, sampling: str, per_epoch: int | None) -> int:
    n = min(per_epoch or n_train, n_train) if sampling == "windows" else (per_epoch or n_train)
    return -(-n // batch_size)


def series_windows(values: np.ndarray, origins: np.ndarray, lookback: int, horizon: int,
                   covariates: np.ndarray | None = None):
    """Windows of one series by origin (index of the first forecast step): past (n, L) padded in front with
    the first value where the origin is < L, its observed mask (n, L), future (n, H) (origins + H <= T), and
    covariates (n, L + H, C) padded alike, or None."""
    padded = pad_front(values, lookback)
    idx = np.asarray(origins)[:, None] + np.arange(lookback + horizon)
    window = padded[idx]
    mask = (idx[:, :lookback] >= lookback).astype(np.float64)
    cov = None if covariates is None else pad_front(covariates, lookback)[idx]
    return window[:, :lookback], mask, window[:, lookback:], cov
