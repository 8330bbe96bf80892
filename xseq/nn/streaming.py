"""The encoder's stream core: one xLSTM step per observation (xseq.stream.Stream drives it)."""
from __future__ import annotations

import torch

from .stream import weights_digest


class EncoderCore:
    """Observation x_t: (B, d_model); output: the encoder's output at t, (B, d_model). Context: the whole
    history since the row's last reset, carried in the recurrent state (and the conv buffers)."""

    def __init__(self, encoder):
        self.encoder = encoder
        self.name = "XLSTMEncoder"
        self.n_features = encoder.d_model

    def init(self, batch_size: int, device):
        return self.encoder.init_state(batch_size, device=device)

    def step(self, x: torch.Tensor, state):
        enc = self.encoder
        dtype = enc.norm.weight.dtype
        return enc.step_unchecked(x if x.dtype is dtype else x.to(dtype), state)

    def identity(self) -> dict:
        return {"model": self.name, "config": self.encoder.config.to_dict(), "weights": weights_digest(self.encoder)}
