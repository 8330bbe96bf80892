"""Lightning training of XLSTMLM: the LightningModule (loss, AdamW groups, warm-up + cosine schedule), the
DataModule (token windows per rank, resumable), and `train(recipe)` which builds the Trainer from the
recipe (strategy, precision, accumulation, checkpoints, validation) and writes the learning curve."""
from __future__ import annotations

import csv
import math
import time
import warnings
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
import yaml
from lightning.pytorch.callbacks import Callback, ModelCheckpoint

from .config import LMRecipe, TrainConfig
from .data import EvalWindows, TokenCorpus, TrainWindows, prepare
from .model import XLSTMLM, optimizer_groups


def lr_factor(step: int, warmup: int, total: int, min_ratio: float) -> float:
    """Linear warm-up over `warmup` steps, then cosine decay to min_ratio of the peak at step `total`."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def world_size(cfg: TrainConfig) -> int:
    if isinstance(cfg.devices, int):
        devices = cfg.devices
    elif cfg.accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available():
        devices = torch.cuda.device_count()
    else:
        devices = 1
    return devices * cfg.num_nodes


def batch_split(cfg: TrainConfig, world: int) -> tuple[int, int]:
    """(micro_batch_size, accumulate) with micro_batch_size * world * accumulate == batch_size."""
    micro = cfg.micro_batch_size or cfg.batch_size // world
    if micro < 1 or cfg.batch_size % (micro * world):
        raise ValueError(f"train.batch_size ({cfg.batch_size}) must be a multiple of micro_batch_size ({micro}) x "
                         f"devices ({world}); set train.micro_batch_size to a divisor of {cfg.batch_size // world}"
                         if cfg.batch_size % world == 0 else
                         f"train.batch_size ({cfg.batch_size}) must be divisible by the number of devices ({world})")
    return micro, cfg.batch_size // (micro * world)


class LMModule(L.LightningModule):
    """Next-token cross-entropy. Records the loss of every optimizer step (the mean over the global batch)
    and every validation in `history`, which travels in the checkpoints."""

    def __init__(self, recipe: dict, accumulate: int = 1):
        super().__init__()
        self.save_hyperparameters()
        self.recipe = LMRecipe.from_dict({k: v for k, v in recipe.items() if k != "name"}, name=recipe.get("name", "lm"))
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

    def on_load_checkpoint(self, checkpoint):
        self.history = checkpoint.get("xseq_history", {"train": [], "val": []})


class LMData(L.LightningDataModule):
    """Tokenises the corpus once (local rank 0), then gives each rank its share of every global batch.
    On resume the training windows continue from the restored optimizer step."""

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
        return torch.utils.data.DataLoader(ds, batch_size=None)

    def val_dataloader(self):
        t = self.recipe.train
        ds = EvalWindows(self.corpus.tokens("val"), t.context_length, self.micro, rank=self.trainer.global_rank,
                         world=self.trainer.world_size, max_batches=t.val_batches)
        return torch.utils.data.DataLoader(ds, batch_size=None)


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


def plot_curve(history: dict, path: Path, title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    if history["train"]:
        s, v = zip(*history["train"])
        ax.plot(s, v, lw=0.8, alpha=0.7, label="train (per step)")
    if history["val"]:
        s, v = zip(*history["val"])
        ax.plot(s, v, "o-", ms=3, label="validation")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("cross-entropy (nats/token)")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_history(history: dict, path: Path) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["step", "split", "loss"])
        for split in ("train", "val"):
            for step, loss in history[split]:
                w.writerow([step, split, f"{loss:.6f}"])


def make_strategy(cfg: TrainConfig):
    if cfg.strategy == "ddp":
        from lightning.pytorch.strategies import DDPStrategy
        return DDPStrategy()
    if cfg.strategy == "fsdp":
        from lightning.pytorch.strategies import FSDPStrategy

        from ..nn.mlstm_block import MLSTMBlock
        from ..nn.slstm_block import SLSTMBlock
        return FSDPStrategy(sharding_strategy=cfg.fsdp_sharding, auto_wrap_policy={MLSTMBlock, SLSTMBlock})
    return "auto"


def resolve_vocab(recipe: LMRecipe, corpus: TokenCorpus) -> LMRecipe:
    """Fill model.vocab_size from the tokenizer where the recipe leaves it None; refuse one too small."""
    n = corpus.vocab_size
    if recipe.model.vocab_size is None:
        return recipe.override([f"model.vocab_size={n}"])
    if recipe.model.vocab_size < n:
        raise ValueError(f"model.vocab_size ({recipe.model.vocab_size}) is smaller than the tokenizer's vocabulary "
                         f"({n}); set it to {n} or more, or to null to take it from the data")
    return recipe


def train(recipe: LMRecipe, *, data_dir=None, resume: str | None = None, progress: bool = True,
          max_steps: int | None = None, verbose: bool = True) -> dict:
    """Train from a recipe. resume: a checkpoint path, or "last" for out_dir/checkpoints/last.ckpt.
    max_steps stops early (the schedule still spans train.max_steps). Returns a summary dict (rank 0)."""
    cfg = recipe.train
    out = Path(cfg.out_dir or f"runs/lm/{recipe.name}")
    warnings.filterwarnings("ignore", message=".*`IterableDataset` has `__len__` defined.*")  # ours: one process
    warnings.filterwarnings("ignore", message=".*Checkpoint directory .* exists and is not empty.*")
    corpus = prepare(recipe.data, data_dir, verbose=verbose)
    recipe = resolve_vocab(recipe, corpus)
    world = world_size(cfg)
    micro, accumulate = batch_split(cfg, world)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    module = LMModule(recipe.to_dict(), accumulate=accumulate)
    throughput = Throughput(cfg.batch_size * cfg.context_length)
    # a checkpoint after every validation (so it holds that validation's result), the newest kept as last.ckpt
    ckpt = ModelCheckpoint(dirpath=out / "checkpoints", filename="step{step}", save_top_k=cfg.keep_checkpoints,
                           monitor="step", mode="max", save_last=True, auto_insert_metric_name=False,
                           enable_version_counter=False)
    trainer = L.Trainer(
        accelerator=cfg.accelerator, devices=cfg.devices, num_nodes=cfg.num_nodes, strategy=make_strategy(cfg),
        precision=cfg.precision, max_steps=max_steps or cfg.max_steps, accumulate_grad_batches=accumulate,
        gradient_clip_val=cfg.grad_clip or None, val_check_interval=cfg.val_interval * accumulate,
        check_val_every_n_epoch=None, num_sanity_val_steps=0, use_distributed_sampler=False,
        deterministic=cfg.deterministic, callbacks=[throughput, ckpt], enable_progress_bar=progress,
        enable_model_summary=False, default_root_dir=str(out), log_every_n_steps=1,
        logger=L.pytorch.loggers.CSVLogger(str(out), name="logs"))
    if trainer.is_global_zero:
        out.mkdir(parents=True, exist_ok=True)
        (out / "recipe.yaml").write_text(yaml.safe_dump(recipe.to_dict(), sort_keys=False))
        if verbose:
            n = module.model.num_parameters()
            print(f"[xseq lm] {recipe.name}: {n / 1e6:.2f}M parameters, vocab {recipe.model.vocab_size} "
                  f"(padded {recipe.model.padded_vocab_size}), {world} device(s) x micro-batch {micro} x "
                  f"accumulate {accumulate} = batch {cfg.batch_size} of {cfg.context_length} tokens", flush=True)
    ckpt_path = None
    if resume is not None:
        ckpt_path = out / "checkpoints" / "last.ckpt" if resume == "last" else Path(resume)
        if not ckpt_path.is_file():
            raise ValueError(f"resume: no checkpoint at {ckpt_path}")
    data = LMData(recipe, micro, accumulate, data_dir)
    trainer.fit(module, datamodule=data, ckpt_path=ckpt_path)
    summary = {"steps": trainer.global_step, "tokens_per_s": throughput.tokens_per_s, "wall_s": throughput.wall_s,
               "train_loss": module.history["train"][-1][1] if module.history["train"] else None,
               "val_loss": module.history["val"][-1][1] if module.history["val"] else None,
               "history": module.history, "out_dir": str(out), "parameters": module.model.num_parameters()}
    if trainer.is_global_zero:
        write_history(module.history, out / "curve.csv")
        plot_curve(module.history, out / "learning_curve.png", f"{recipe.name} ({summary['parameters'] / 1e6:.2f}M)")
        if verbose:
            val = summary["val_loss"]
            print(f"[xseq lm] {summary['steps']} steps in {summary['wall_s']:.1f} s wall, "
                  f"{summary['tokens_per_s']:,.0f} training tokens/s; final validation loss "
                  f"{'n/a' if val is None else f'{val:.4f} nats/token (ppl {math.exp(val):.2f})'}; "
                  f"curve in {out / 'learning_curve.png'}", flush=True)
    return summary


def load_model(checkpoint: str | Path, map_location="cpu") -> tuple[XLSTMLM, LMRecipe]:
    """The XLSTMLM of a training checkpoint (float32, eval mode) and its recipe."""
    path = Path(checkpoint)
    if not path.is_file():
        raise ValueError(f"checkpoint {str(path)!r} does not exist")
    ck = torch.load(path, map_location=map_location, weights_only=False)
    recipe_d = ck["hyper_parameters"]["recipe"]
    recipe = LMRecipe.from_dict({k: v for k, v in recipe_d.items() if k != "name"}, name=recipe_d.get("name", "lm"))
    model = XLSTMLM(recipe.model)
    state = {k[len("model."):]: v for k, v in ck["state_dict"].items() if k.startswith("model.")}
    model.load_state_dict(state)
    return model.eval(), recipe


__all__ = ["LMModule", "LMData", "train", "load_model", "lr_factor"]
