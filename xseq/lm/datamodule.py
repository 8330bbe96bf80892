"""LMData: the LightningDataModule of XLSTMLM training: token windows per rank, resumable."""
from __future__ import annotations

import lightning as L
import torch

from .config import LMRecipe
from .data import EvalWindows, TokenCorpus, TrainWindows, prepare


class LMData(L.LightningDataModule):
    """Tokenises the corpus once (local rank 0), then gives each rank its share of every global batch.
    On resume the training windows continue from the restored optimizer step. The loaders draw their (unused:
    no worker processes) base seeds from their own generators, not from the global RNG that dropout uses: a
    resumed run, which makes its training loader anew, then drops out as the uninterrupted one does."""

    def __init__(self, recipe: LMRecipe, micro_batch: int, accumulate: int, data_dir=None):
        super().__init__()
        self.recipe, self.micro, self.accumulate, self.data_dir = recipe, micro_batch, accumulate, data_dir
        self.corpus: TokenCorpus | None = None

    def prepare_data(self):
        prepare(self.recipe.data, self.data_dir)

    def setup(self, stage=None):
        self.corpus = prepare(self.recipe.data, self.data_dir, verbose=False)

    def train_dataloader(self):
        t = self.recipe.train
        ds = TrainWindows(self.corpus.tokens("train"), t.context_length, self.micro, t.seed,
                          self.recipe.data.sampling, rank=self.trainer.global_rank, world=self.trainer.world_size,
                          start=self.trainer.global_step * self.accumulate)
        return torch.utils.data.DataLoader(ds, batch_size=None, generator=torch.Generator())

    def val_dataloader(self):
        t = self.recipe.train
        ds = EvalWindows(self.corpus.tokens("val"), t.context_length, self.micro, rank=self.trainer.global_rank,
                         world=self.trainer.world_size, max_batches=t.val_batches)
        return torch.utils.data.DataLoader(ds, batch_size=None, generator=torch.Generator())
