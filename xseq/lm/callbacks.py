"""Lightning callbacks of XLSTMLM training."""
from __future__ import annotations

import time

from lightning.pytorch.callbacks import Callback


class Throughput(Callback):
    """Tokens per second of training (validation excluded) and the wall time of the run."""

    def __init__(self, tokens_per_step: int):
        self.tokens_per_step = tokens_per_step
        self.train_s, self.steps, self.micro, self.t0, self.wall0 = 0.0, 0, 0, None, None

    def on_train_start(self, trainer, pl_module):
        self.wall0 = time.perf_counter()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if self.t0 is None:
            self.t0 = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.micro += 1
        if self.micro % pl_module.accumulate == 0:  # an optimizer step just ended
            self.train_s += time.perf_counter() - self.t0
            self.t0 = None
            self.steps += 1
            pl_module.log("tokens_per_s", self.tokens_per_step * self.steps / max(self.train_s, 1e-9))

    @property
    def tokens_per_s(self) -> float:
        return self.tokens_per_step * self.steps / max(self.train_s, 1e-9)

    @property
    def wall_s(self) -> float:
        return time.perf_counter() - self.wall0
