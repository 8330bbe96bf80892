"""KeepBest: a copy of the network's weights at its best validation score (lower is better)."""
from __future__ import annotations

import copy
import math

import lightning as L


class KeepBest(L.Callback):
    """Watches `monitor` after every validation (sanity checks excluded) and keeps a copy of
    `module.net.state_dict()` whenever it improves on the best so far. `initial_score`/`initial_state`
    seed it with the untrained network (the forecaster: training may only improve on its linear path, as
    judged on validation); by default the first validation is kept. After fit, `best_state` is None only if
    no validation ever ran or none improved on the seed, and `best_epoch` is -1 for the seed."""

    def __init__(self, monitor: str = "val_loss", initial_score: float = math.inf, initial_state: dict | None = None):
        self.monitor, self.best_score, self.best_state, self.best_epoch = monitor, initial_score, initial_state, -1

    def on_validation_end(self, trainer, module):
        if trainer.sanity_checking:
            return
        score = trainer.callback_metrics.get(self.monitor)
        if score is not None and float(score) < self.best_score:
            self.best_score, self.best_epoch = float(score), trainer.current_epoch
            self.best_state = copy.deepcopy(module.net.state_dict())
