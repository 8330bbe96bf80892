"""TiRexForecaster's stream core: a buffer of each series' last `context_length` values.

TiRex scales its whole window by the window's own mean and std, so every new observation changes the scaled
input of every patch and the sLSTM state of a previous window cannot be carried over exactly. The core
therefore reads the (fixed-size) window again at each update: the cost per observation is constant, whatever
the length of the history, and the forecast equals predict(y=history) after every observation."""
from __future__ import annotations

import torch
from tensordict import TensorDict

from ...nn.stream import weights_digest


class TiRexCore:
    def __init__(self, forecaster, device):
        self.f, self.device = forecaster, device
        self.name = "TiRexForecaster"
        self.n_features = len(forecaster.series_names_)
        self.net = forecaster.net_.to(device)
        self.columns = forecaster.output_indices()  # the median, then the asked quantile levels

    def init(self, batch_size: int, device):
        C = self.f.config_.context_length
        return TensorDict({"buffer": torch.zeros(batch_size, self.n_features, C, dtype=torch.float64, device=device),
                           "filled": torch.zeros(batch_size, dtype=torch.long, device=device)},
                          batch_size=[batch_size], device=device)

    def step(self, x: torch.Tensor, state):
        f = self.f
        buffer = torch.cat([state["buffer"][..., 1:], x.to(torch.float64).unsqueeze(-1)], dim=-1)
        filled = (state["filled"] + 1).clamp_max(buffer.shape[-1])
        B, S, C = buffer.shape
        seen = torch.arange(C, device=x.device) >= (C - filled)[:, None]            # (B, C)
        context = torch.where(seen[:, None, :], buffer, torch.full_like(buffer, float("nan")))
        out = self.net.forecast(context.reshape(B * S, C).float(), f.horizon).double()  # (B*S, H, Q)
        out = out[..., self.columns].view(B, S, f.horizon, len(self.columns))
        if len(self.columns) == 1:
            out = out.squeeze(-1)
        return out, TensorDict({"buffer": buffer, "filled": filled}, batch_size=[B], device=x.device)

    def identity(self) -> dict:
        f = self.f
        return {"model": self.name, "series": [str(n) for n in f.series_names_], "horizon": f.horizon,
                "quantiles": list(f._quantiles()), "weights": weights_digest(self.net)}
