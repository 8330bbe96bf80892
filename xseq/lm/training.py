"""`train(recipe)`: XLSTMLM training through Lightning, built from the recipe (strategy, precision,
accumulation, checkpoints, validation), writing the learning curve; `load_model(checkpoint)`. The parts live
in their own modules: LMModule and lr_factor in .module, LMData in .datamodule, Throughput in .callbacks,
plot_curve and write_history in .report, world_size, batch_split and make_strategy in .strategy; all are
importable from here as before."""
from __future__ import annotations

import math
import warnings
from pathlib import Path

import lightning as L
import torch
import yaml
from lightning.pytorch.callbacks import ModelCheckpoint

from .callbacks import Throughput
from .config import LMRecipe, TrainConfig  # noqa: F401  (TrainConfig: importable from here as before)
from .data import TokenCorpus, prepare
from .datamodule import LMData
from .model import XLSTMLM
from .module import LMModule, lr_factor
from .report import plot_curve, write_history
from .strategy import batch_split, make_strategy, world_size


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


__all__ = ["LMModule", "LMData", "train", "load_model", "lr_factor", "world_size", "batch_split", "make_strategy",
           "resolve_vocab", "Throughput", "plot_curve", "write_history"]
