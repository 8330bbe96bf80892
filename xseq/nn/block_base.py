"""What the mLSTM and sLSTM blocks share: the state, the step through the block-step op of xseq.ops on the
configured backend, and the bookkeeping the fused (compiled) steps rely on."""
from __future__ import annotations

from torch import nn

from .. import ops
from ..ops.numba_layers import forget_weights


class StepBlock(nn.Module):
    """A pre-LayerNorm residual block with a cell `layer` (its config in `layer.cfg`) and a dropout `drop`.
    Subclasses set `step_op` (the op of xseq.ops whose backends run step()) and define `torch_step` and
    `step_weights`."""

    step_op: str

    def init_state(self, batch_size: int, device=None, dtype=None):
        return self.layer.init_state(batch_size, device, dtype)

    def _apply(self, fn, *args, **kwargs):  # .to(), .float(), ...: parameters' data may move
        forget_weights(self)
        return super()._apply(fn, *args, **kwargs)

    @property
    def backend(self) -> str:
        cfg = self.__dict__.get("_cfg")  # the layer's config, a plain attribute read every step (absent in
        return (cfg if cfg is not None else self.layer.cfg).backend  # blocks pickled by older versions)

    @property
    def dropout(self) -> float:
        return self.drop.p

    def step(self, x, state, validate: bool = True):
        """One time step through the block-step op of xseq.ops on the layer's backend (the fused CPU step where
        it applies)."""
        return ops.resolve(self.step_op, self.backend, x.device)(self, x, state, validate)
