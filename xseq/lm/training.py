"""`train(recipe)`: XLSTMLM training through Lightning, built from the recipe (strategy, precision,
accumulation, checkpoints, validation), writing the learning curve. The parts live in their own modules:
LMModule and lr_factor in .module, LMData in .datamodule, Throughput in .callbacks, plot_curve and
write_history in .report, world_size, batch_split and make_strategy in .strategy, load_model (weights-only
reading of checkpoints) in .checkpoint; all are importable from here as before."""
from __future__ import annotations

import math
from pathlib import Path

import lightning as L
import yaml
from lightning.pytorch.callbacks import ModelCheckpoint

from ..common.callbacks import AtomicCheckpointIO, Resumable
from ..common.quiet import quiet_lightning
from .callbacks import Throughput
from .checkpoint import load_model, read_checkpoint
from .config import LMRecipe, TrainConfig  # noqa: F401  (TrainConfig: importable from here as before)
from .data import TokenCorpus, prepare
from .datamodule import LMData
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


def framework_quiet(enabled: bool = True):
    """Lightning's info messages ("GPU available...", tips) and the known-harmless warnings silenced for the
    block (xseq.common.quiet, shared with the estimators); restored afterwards."""
    return quiet_lightning(1 if enabled else 2)


def summary_line(summary: dict) -> str:
    """The one line a finished (or already finished) run reports."""
    if summary.get("nothing_to_do"):
        return summary["nothing_to_do"]
    val = summary["val_loss"]
    first = summary.get("first_step") or 0
    steps = f"{summary['steps'] - first} steps (step {first} to {summary['steps']})" if first else \
        f"{summary['steps']} steps"
    return (f"[xseq lm] {steps} in {summary['wall_s']:.1f} s wall, "
            f"{summary['tokens_per_s']:,.0f} training tokens/s; final validation loss "
            f"{'n/a' if val is None else f'{val:.4f} nats/token (ppl {math.exp(val):.2f})'}; "
            f"curve in {Path(summary['out_dir']) / 'learning_curve.png'}")


def resume_path(recipe: LMRecipe, resume: str | Path) -> Path:
    """The checkpoint `resume` names: "last" (out_dir/checkpoints/last.ckpt) or a path."""
    out = Path(recipe.train.out_dir or f"runs/lm/{recipe.name}")
    path = out / "checkpoints" / "last.ckpt" if str(resume) == "last" else Path(resume)
    if not path.is_file():
        raise ValueError(f"resume: no checkpoint at {path}" + (" (train without resume first)" if str(resume) == "last"
                                                                 else ""))
    return path


def _check_resumable(ck: dict, recipe: LMRecipe, path: Path) -> None:
    """The resumed checkpoint must hold the recipe's model (train settings may change, e.g. max_steps)."""
    theirs = ck["hyper_parameters"]["recipe"].get("model")
    ours = recipe.to_dict()["model"]
    diff = sorted(_differences(theirs, ours, "model"))
    if diff:
        raise ValueError(f"resume: {path} holds another model than the recipe describes (it differs in "
                         f"{', '.join(diff[:5])}); resume with the recipe it was trained from")


def _differences(a, b, prefix: str):
    if isinstance(a, dict) and isinstance(b, dict):
        for k in set(a) | set(b):
            yield from _differences(a.get(k), b.get(k), f"{prefix}.{k}")
    elif a != b and not (isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) and list(a) == list(b)):
        yield prefix


def train(recipe: LMRecipe, *, data_dir=None, resume: str | None = None, progress: bool = True,
          max_steps: int | None = None, verbose: bool = True, framework_messages: bool = False) -> dict:
    """Train from a recipe. resume: a checkpoint path, or "last" for out_dir/checkpoints/last.ckpt; the run then
    continues up to train.max_steps optimizer steps IN ALL (raise it to train a finished run further: the
    cosine schedule is stretched to end there), and a checkpoint already there trains nothing (the summary's
    "nothing_to_do" says so). max_steps stops early (the schedule still spans train.max_steps). verbose: xseq's
    own lines; framework_messages: Lightning's info messages and known-harmless warnings too. The checkpoints
    hold the model, its recipe and its tokenizer (everything `generate` and `eval` need) as plain data.
    Returns a summary dict (on every rank; "global_zero" is True on the one that reports)."""
    cfg = recipe.train
    out = Path(cfg.out_dir or f"runs/lm/{recipe.name}")
    target = max_steps or cfg.max_steps
    ckpt_path, first_step = None, 0
    if resume is not None:
        ckpt_path = resume_path(recipe, resume)
        ck = read_checkpoint(ckpt_path, mmap=True)
        done = first_step = int(ck.get("global_step", 0))
        if done >= target:
            summary = {"steps": done, "out_dir": str(out), "history": ck.get("xseq_history"),
                       "nothing_to_do": f"[xseq lm] nothing to do: {ckpt_path} is at step {done:,}, already at "
                                        f"train.max_steps {target:,} or past it; pass --set train.max_steps=N with "
                                        f"N > {done:,} to train further"}
            if verbose:
                print(summary["nothing_to_do"], flush=True)
            return summary
    corpus = prepare(recipe.data, data_dir, verbose=verbose)
    recipe = resolve_vocab(recipe, corpus)
    if ckpt_path is not None:
        _check_resumable(ck, recipe, ckpt_path)
        del ck
    world = world_size(cfg)
    micro, accumulate = batch_split(cfg, world)
    with framework_quiet(not framework_messages):
        L.seed_everything(cfg.seed, workers=True, verbose=False)
        module = LMModule(recipe.to_dict(), accumulate=accumulate, tokenizer=corpus.tokenizer.state())
        throughput = Throughput(cfg.batch_size * cfg.context_length)
        # a checkpoint after every validation (so it holds that validation's result), the newest kept as last.ckpt;
        # each written by a rename (a run killed while saving keeps the one before) and holding the RNG states
        # (Resumable: dropout continues as in an uninterrupted run)
        ckpt = ModelCheckpoint(dirpath=out / "checkpoints", filename="step{step}", save_top_k=cfg.keep_checkpoints,
                               monitor="step", mode="max", save_last=True, auto_insert_metric_name=False,
                               enable_version_counter=False)
        trainer = L.Trainer(
            accelerator=cfg.accelerator, devices=cfg.devices, num_nodes=cfg.num_nodes, strategy=make_strategy(cfg),
            precision=cfg.precision, max_steps=target, accumulate_grad_batches=accumulate,
            gradient_clip_val=cfg.grad_clip or None, val_check_interval=cfg.val_interval * accumulate,
            check_val_every_n_epoch=None, num_sanity_val_steps=0, use_distributed_sampler=False,
            deterministic=cfg.deterministic, callbacks=[throughput, ckpt, Resumable({"recipe": recipe.name})],
            plugins=[AtomicCheckpointIO()], enable_progress_bar=progress,
            enable_model_summary=False, default_root_dir=str(out), log_every_n_steps=1,
            logger=L.pytorch.loggers.CSVLogger(str(out), name="logs"))
        if trainer.is_global_zero:
            out.mkdir(parents=True, exist_ok=True)
            (out / "recipe.yaml").write_text(yaml.safe_dump(recipe.to_dict(), sort_keys=False))
            if verbose:
                n = module.model.num_parameters()
                print(f"[xseq lm] {recipe.name}: {n / 1e6:.2f}M parameters, vocab {recipe.model.vocab_size} "
                      f"(padded {recipe.model.padded_vocab_size}), {world} device(s) x micro-batch {micro} x "
                      f"accumulate {accumulate} = batch {cfg.batch_size} of {cfg.context_length} tokens"
                      + (f"; resuming {ckpt_path} up to step {target:,}" if ckpt_path else ""), flush=True)
        data = LMData(recipe, micro, accumulate, data_dir)
        trainer.fit(module, datamodule=data, ckpt_path=ckpt_path, weights_only=True)
        if trainer.global_step > 0 and module.saved_step != trainer.global_step:
            trainer.save_checkpoint(out / "checkpoints" / "last.ckpt", weights_only=False)  # the last steps too
    summary = {"steps": trainer.global_step, "first_step": first_step, "tokens_per_s": throughput.tokens_per_s,
               "wall_s": throughput.wall_s,
               "train_loss": module.history["train"][-1][1] if module.history["train"] else None,
               "val_loss": module.history["val"][-1][1] if module.history["val"] else None,
               "history": module.history, "out_dir": str(out), "parameters": module.model.num_parameters(),
               "global_zero": trainer.is_global_zero}
    if trainer.is_global_zero:
        write_history(module.history, out / "curve.csv")
        plot_curve(module.history, out / "learning_curve.png", f"{recipe.name} ({summary['parameters'] / 1e6:.2f}M)")
        if verbose:
            print(summary_line(summary), flush=True)
    return summary


__all__ = ["LMModule", "LMData", "train", "load_model", "framework_quiet", "summary_line", "resume_path", "lr_factor",
           "world_size", "batch_split", "make_strategy", "resolve_vocab", "Throughput", "plot_curve", "write_history"]
