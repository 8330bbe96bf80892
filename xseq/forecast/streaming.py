"""The forecaster's stream core: a ring buffer of the last `lookback` observations of every series.

Context (the same as predict's): each forecast conditions on exactly the last `lookback` values of every
series. The stream keeps them in a fixed-size buffer, so an update costs one network evaluation on a
(lookback,) window, whatever the length of the history; before a row has seen `min_context` observations
(lookback unless the forecaster pads short histories) its forecast is NaN (predict refuses such a short
history); in between, the window is padded in front with the row's first value, as predict pads it."""
from __future__ import annotations

import copy
import hashlib

import numpy as np
import torch
from tensordict import TensorDict

from ..nn.stream import weights_digest


class ForecastCore:
    """Observation: (B, n_series) newest values of the fitted series, in data units, in fit's column order.
    Output: (B, n_series, horizon), or (B, n_series, horizon, 1 + n_quantiles) with the point forecast first
    and then the quantile levels in ascending order (as predict's columns)."""

    def __init__(self, forecaster, device):
        f = forecaster
        if f.covariate_names_:
            raise ValueError("stream() does not support forecasters fitted with covariates X: their forecasts need "
                             "the covariates' future values, which an observation stream does not carry")
        self.f = f
        self.name = "XLSTMForecaster"
        self.n_features = len(f.series_names_)
        self.mean = torch.as_tensor(f.shift_, dtype=torch.float64, device=device)
        self.std = torch.as_tensor(f.scale_, dtype=torch.float64, device=device)
        self.static = None if f.static_ is None else torch.as_tensor(f.static_, dtype=torch.float32, device=device)
        self.min_context = f._min_context()
        net = f.net_
        self.net = net if torch.device(device) == torch.device("cpu") else copy.deepcopy(net).to(device)

    def init(self, batch_size: int, device):
        S, L_ = self.n_features, self.f.lookback
        return TensorDict({"buffer": torch.zeros(batch_size, S, L_, dtype=torch.float64, device=device),
                           "first": torch.zeros(batch_size, S, dtype=torch.float64, device=device),
                           "filled": torch.zeros(batch_size, dtype=torch.long, device=device)},
                          batch_size=[batch_size], device=device)

    def step(self, x: torch.Tensor, state):
        f, net = self.f, self.net
        x = x.to(torch.float64)
        first = torch.where((state["filled"] == 0)[:, None], x, state["first"])
        buffer = torch.cat([state["buffer"][..., 1:], x.unsqueeze(-1)], dim=-1)
        filled = (state["filled"] + 1).clamp_max(f.lookback)
        B, S, L_ = buffer.shape
        observed = torch.arange(L_, device=x.device) >= (L_ - filled)[:, None]          # (B, L)
        window = torch.where(observed[:, None, :], buffer, first.unsqueeze(-1))          # padded as predict pads
        mean, std = self.mean, self.std
        past = (window - mean[:, None]) / std[:, None]                      # (B, S, L) scaled as in fit
        cross = None
        if f.cross_series:
            blocks = past[..., -f.cross_series:]
            cross = (blocks - blocks.mean(-1, keepdim=True)).reshape(B, -1).float()
            cross = cross.repeat_interleave(S, dim=0)                        # every series sees every series
        mask = observed.float().repeat_interleave(S, dim=0) if net.observed_mask else None
        static = None if self.static is None else self.static.repeat(B, 1)
        out = net(past.reshape(B * S, L_).float(), cross=cross, mask=mask, static=static).double()  # (B*S, H, n_out)
        out = out.view(B, S, f.horizon, -1) * std[:, None, None] + mean[:, None, None]
        if f._quantiles():
            m = net.median_index
            out = torch.cat([out[..., m:m + 1], out], dim=-1)
        else:
            out = out.squeeze(-1)
        ready = (filled >= self.min_context).view(B, *([1] * (out.dim() - 1)))
        out = torch.where(ready, out, torch.full_like(out, float("nan")))
        return out, TensorDict({"buffer": buffer, "first": first, "filled": filled}, batch_size=[B],
                               device=x.device)

    def identity(self) -> dict:
        f = self.f
        h = hashlib.sha256(np.ascontiguousarray(f.shift_, dtype=np.float64).tobytes()
                           + np.ascontiguousarray(f.scale_, dtype=np.float64).tobytes()).hexdigest()[:16]
        return {"model": self.name, "series": [str(n) for n in f.series_names_], "lookback": f.lookback,
                "horizon": f.horizon, "quantiles": list(f._quantiles()), "scaling": h,
                "weights": weights_digest(f.net_)}
