"""The forecasting network: a linear skip path plus an xLSTM over patches, one series at a time.

For each window of L past values x (one series; channels are separate series, "channel independence"):
  mu = mean(x), s = std(x - mu)                        instance normalisation
  skip  = W [x - mu, cross]                            a linear map to H (initialised at the closed-form fit);
                                                       cross (optional): the last K values of every aligned
                                                       series, each minus its own mean
  deep  = s * head(xLSTM(embed(patches((x - mu) / s))))  the xLSTM reads L / P patch tokens; the head reads
                                                       its last output ("last") or all of them ("flatten");
                                                       every token also gets the window's level and scale,
                                                       (asinh mu, log s), so that the deep path can forecast
                                                       what depends on them (mean reversion, a static drift)
  point = mu + skip + deep (+ a pointwise term in the future-known covariates)
Each patch token carries the patch's values, then its covariates (future-known and historical), then its
observed mask where short histories are padded (see xseq.forecast.windows); static covariates (one vector
per series) are added to every token's embedding.
Quantiles, if any, are the point forecast (the median) plus cumulative softplus offsets from a separate head
on the same features (scaled by s), so they never cross. The deep head starts at zero: an untrained network
forecasts exactly what its linear path does."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..nn import XLSTMConfig, XLSTMEncoder


class ForecastNet(nn.Module):
    def __init__(self, lookback: int, horizon: int, encoder: XLSTMConfig, patch_len: int = 16,
                 quantiles: tuple[float, ...] = (), n_covariates: int = 0, dropout: float = 0.1,
                 head: str = "flatten", cross_features: int = 0, n_future_covariates: int | None = None,
                 n_static: int = 0, observed_mask: bool = False, deep: bool = True):
        """n_covariates: covariate channels in the past patches (future-known first, then historical-only);
        n_future_covariates: how many of them are also known over the horizon (default: all);
        n_static: features per series; observed_mask: patches also carry a 0/1 mask of observed values;
        deep=False: no xLSTM path at all (the linear-only ablation: point = mu + skip + covariate term)."""
        super().__init__()
        self.lookback, self.horizon, self.patch_len = lookback, horizon, patch_len
        self.n_patches = math.ceil(lookback / patch_len)
        self.quantiles = tuple(quantiles)
        self.n_out = max(1, len(self.quantiles))
        self.median_index = self.quantiles.index(0.5) if self.quantiles else 0
        self.n_covariates = n_covariates
        self.n_future = n_covariates if n_future_covariates is None else n_future_covariates
        if not 0 <= self.n_future <= n_covariates:
            raise ValueError(f"n_future_covariates must be in [0, n_covariates={n_covariates}]; got {self.n_future}")
        self.n_static, self.observed_mask = n_static, observed_mask
        if head not in ("last", "flatten"):
            raise ValueError(f"head must be 'last' (the xLSTM's output after the last patch) or 'flatten' "
                             f"(every patch's output, PatchTST-style); got {head!r}")
        self.head_kind, self.deep = head, deep
        d = encoder.d_model
        self.cross_features = cross_features
        self.skip = nn.Linear(lookback + cross_features, horizon, bias=False)
        features = (self.n_patches if head == "flatten" else 1) * d
        if deep:
            self.embed = nn.Linear(patch_len * (1 + n_covariates + int(observed_mask)), d)
            if n_static:
                self.static_embed = nn.Linear(n_static, d)
            self.stats_embed = nn.Linear(2, d, bias=False)
            nn.init.zeros_(self.stats_embed.weight)
            self.encoder = XLSTMEncoder(encoder)
            self.drop = nn.Dropout(dropout)
            self.head = nn.Linear(features, horizon)
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)
        elif self.quantiles:
            raise ValueError("quantiles need the deep path (their head reads its features)")
        if self.quantiles:
            self.quantile_head = nn.Linear(features, horizon * (self.n_out - 1))
            nn.init.zeros_(self.quantile_head.weight)
        if self.n_future:
            self.future_cov = nn.Linear(self.n_future, 1)
            nn.init.zeros_(self.future_cov.weight)
            nn.init.zeros_(self.future_cov.bias)

    def quantile_parameters(self) -> list[nn.Parameter]:
        return list(self.quantile_head.parameters()) if self.quantiles else []

    def set_skip(self, W: torch.Tensor) -> None:
        """W: (L + cross_features, H), e.g. the closed-form ridge solution."""
        with torch.no_grad():
            self.skip.weight.copy_(torch.as_tensor(W, dtype=self.skip.weight.dtype).T)

    def forward(self, past: torch.Tensor, past_cov: torch.Tensor | None = None,
                future_cov: torch.Tensor | None = None, cross: torch.Tensor | None = None,
                mask: torch.Tensor | None = None, static: torch.Tensor | None = None) -> torch.Tensor:
        """past: (N, L); past_cov: (N, L, C); future_cov: (N, H, C_future); cross: (N, cross_features);
        mask: (N, L) 1 where observed (needed when built with observed_mask); static: (N, n_static).
        Returns (N, H, n_out), quantiles in ascending order (n_out = 1 without quantiles)."""
        mu = past.mean(dim=1, keepdim=True)
        centred = past - mu
        scale = centred.std(dim=1, keepdim=True).clamp_min(1e-5)
        skip = self.skip(centred if cross is None else torch.cat([centred, cross], dim=1))  # (N, H)

        if not self.deep:
            deep = self.future_cov(future_cov[..., :self.n_future]).squeeze(-1) if self.n_future else 0.0
            return (mu + skip + deep * scale).unsqueeze(-1)
        front = self.n_patches * self.patch_len - self.lookback
        tokens = F.pad(centred / scale, (front, 0)).view(-1, self.n_patches, self.patch_len)
        if self.n_covariates:
            cov = F.pad(past_cov, (0, 0, front, 0))
            cov = cov.reshape(-1, self.n_patches, self.patch_len * self.n_covariates)
            tokens = torch.cat([tokens, cov], dim=-1)
        if self.observed_mask:
            if mask is None:
                raise ValueError("this network reads an observed mask: pass mask (N, L)")
            tokens = torch.cat([tokens, F.pad(mask.to(tokens.dtype), (front, 0)).view(-1, self.n_patches,
                                                                                      self.patch_len)], dim=-1)
        stats = torch.cat([torch.asinh(mu), torch.log(scale)], dim=1)  # (N, 2)
        x = self.embed(tokens) + self.stats_embed(stats).unsqueeze(1)
        if self.n_static:
            x = x + self.static_embed(static).unsqueeze(1)
        h, _ = self.encoder(x)
        h = self.drop(h.flatten(1) if self.head_kind == "flatten" else h[:, -1])
        deep = self.head(h)
        if self.n_future:
            deep = deep + self.future_cov(future_cov[..., :self.n_future]).squeeze(-1)
        point = (mu + skip + deep * scale).unsqueeze(-1)  # (N, H, 1)
        if not self.quantiles:
            return point
        m = self.median_index
        raw = F.softplus(self.quantile_head(h).view(-1, self.horizon, self.n_out - 1)) * scale.unsqueeze(-1)
        lower = torch.flip(torch.cumsum(torch.flip(raw[..., :m], [-1]), -1), [-1])
        upper = torch.cumsum(raw[..., m:], -1)
        return torch.cat([point - lower, point, point + upper], -1)
