"""LMModule: the LightningModule of XLSTMLM training: next-token cross-entropy, AdamW groups (paper D.2), the
warm-up + cosine schedule, and the loss history and tokenizer that travel in the checkpoints."""
from __future__ import annotations

import math

import lightning as L
import torch
import torch.nn.functional as F

from ..common.optim import optimizer_groups
from ..common.schedules import warmup_cosine
from .checkpoint import TOKENIZER_KEY
from .config import LMRecipe
from .model import XLSTMLM

lr_factor = warmup_cosine  # the LM recipe's name for it


class LMModule(L.LightningModule):
    """Next-token cross-entropy. Records the loss of every optimizer step (the mean over the global batch)
    and every validation in `history`, which travels in the checkpoints."""

    def __init__(self, recipe: dict, accumulate: int = 1, tokenizer: dict | None = None):
        """tokenizer: the corpus tokenizer's state(), stored in every checkpoint (not in the hyperparameters,
        which the loggers write out: a GPT-2 vocabulary is megabytes)."""
        super().__init__()
        self.save_hyperparameters(ignore=["tokenizer"])
        self.tokenizer = tokenizer
        self.saved_step = None  # the optimizer step of the newest checkpoint written
        self.recipe = LMRecipe.from_dict({k: v for k, v in recipe.items() if k != "name"},
                                         name=recipe.get("name", "lm"))
        self.model = XLSTMLM(self.recipe.model)
        self.accumulate = accumulate
        self.history = {"train": [], "val": []}  # (step, loss)
        self._micro: list[torch.Tensor] = []
        self._val: list[torch.Tensor] = []

    def _loss(self, batch) -> torch.Tensor:
        x, y = batch
        logits, _ = self.model(x, validate=False)
        return F.cross_entropy(logits.float().flatten(0, 1), y.flatten())

    def training_step(self, batch, batch_idx):
        loss = self._loss(batch)
        self._micro.append(loss.detach())
        return loss  # Lightning divides by accumulate_grad_batches itself

    def on_train_batch_end(self, outputs, batch, batch_idx):
        if len(self._micro) < self.accumulate:
            return
        loss = self.trainer.strategy.reduce(torch.stack(self._micro).mean(), reduce_op="mean")
        self._micro = []
        value = float(loss)
        self.history["train"].append((self.global_step, value))
        self.log("train_loss", value, prog_bar=True)
        self.log("lr", self.optimizers().param_groups[0]["lr"])
        self.log("step", float(self.global_step))  # ModelCheckpoint keeps the newest by this

    def validation_step(self, batch, batch_idx):
        self._val.append(self._loss(batch).detach())

    def on_validation_epoch_end(self):
        if not self._val:
            return
        loss = float(self.trainer.strategy.reduce(torch.stack(self._val).mean(), reduce_op="mean"))
        self._val = []
        if not self.trainer.sanity_checking:
            self.history["val"].append((self.global_step, loss))
        self.log("val_loss", loss, prog_bar=True, sync_dist=True)  # already the global mean: the sync
        self.log("val_ppl", math.exp(min(loss, 50.0)), sync_dist=True)  # only silences Lightning's warning

    def configure_optimizers(self):
        cfg = self.recipe.train
        opt = torch.optim.AdamW(optimizer_groups(self.model, cfg.weight_decay), lr=cfg.lr, betas=cfg.betas,
                                eps=cfg.eps)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: lr_factor(s, cfg.warmup_steps, cfg.max_steps, cfg.min_lr_ratio))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def on_save_checkpoint(self, checkpoint):
        checkpoint["xseq_history"] = self.history
        if self.tokenizer is not None:
            checkpoint[TOKENIZER_KEY] = self.tokenizer
        self.saved_step = self.global_step

    def on_load_checkpoint(self, checkpoint):
        self.history = checkpoint.get("xseq_history", {"train": [], "val": []})
        if self.tokenizer is None:
            self.tokenizer = checkpoint.get(TOKENIZER_KEY)
