"""Training on a synthetic task through Lightning: batches generated on the fly (batch s of a run depends
only on (seed, s)), cross-entropy on the masked positions only, AdamW with linear warm-up and cosine
annealing to min_lr (D.1.1), then evaluation on fresh samples (formal tasks at the extrapolation lengths)
reported as accuracy and the paper's scaled accuracy."""
from __future__ import annotations

import json
import math
import time
import warnings
from pathlib import Path

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, IterableDataset

from ..common.optim import optimizer_groups
from ..common.plots import figure
from ..common.schedules import warmup_cosine
from .config import SyntheticRecipe, TaskConfig
from .formal import Batch, get_task
from .models import build_model
from .recall import mqar


def task_vocab(task: TaskConfig) -> tuple[int, float]:
    """(vocabulary size, s_rand)."""
    if task.kind == "formal":
        t = get_task(task.name)
        return t.vocab_size, t.s_rand
    return task.vocab_size, 1.0 / (task.vocab_size // 2)  # a value guessed at random


def draw(task: TaskConfig, rng: np.random.Generator, batch_size: int, split: str) -> Batch:
    if task.kind == "formal":
        lengths = task.train_lengths if split == "train" else task.eval_lengths
        return get_task(task.name).sample(rng, batch_size, lengths)
    return mqar(rng, batch_size, task.seq_len, task.num_kv, task.vocab_size)


def to_tensors(b: Batch):
    return torch.from_numpy(b.inputs), torch.from_numpy(b.targets), torch.from_numpy(b.mask)


class Batches(IterableDataset):
    def __init__(self, task: TaskConfig, batch_size: int, seed: int):
        self.task, self.batch_size, self.seed = task, batch_size, seed

    def __iter__(self):
        step = 0
        while True:
            rng = np.random.default_rng([self.seed, step])
            yield to_tensors(draw(self.task, rng, self.batch_size, "train"))
            step += 1


def masked_logits(model, x, mask):
    """Logits at the positions that count only: (number of True in mask, V)."""
    return model.head(model.hidden(x)[mask])[:, :model.vocab_size]


class SyntheticModule(L.LightningModule):
    def __init__(self, model, recipe: SyntheticRecipe):
        super().__init__()
        self.model, self.cfg = model, recipe.train
        self.history: list[tuple[int, float, float]] = []  # (step, loss, accuracy on the batch)

    def training_step(self, batch, batch_idx):
        x, y, mask = batch
        logits = masked_logits(self.model, x, mask)
        loss = F.cross_entropy(logits.float(), y[mask])
        acc = (logits.argmax(-1) == y[mask]).float().mean()
        self.history.append((self.global_step, float(loss.detach()), float(acc)))
        self.log_dict({"loss": loss, "acc": acc}, prog_bar=True)
        return loss

    def configure_optimizers(self):
        """The LM's AdamW groups and warm-up + cosine schedule (xseq.lm), annealed to min_lr."""
        c = self.cfg
        opt = torch.optim.AdamW(optimizer_groups(self.model, c.weight_decay), lr=c.lr, betas=c.betas)
        warm, ratio = int(c.warmup_fraction * c.steps), c.min_lr / c.lr
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: warmup_cosine(s, warm, c.steps, ratio))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


@torch.no_grad()
def evaluate(model, recipe: SyntheticRecipe, split: str = "eval") -> dict:
    """Accuracy over the counted positions of `samples` fresh samples (formal: eval lengths), and per
    length bucket for formal tasks."""
    task, ev = recipe.task, recipe.eval
    _, s_rand = task_vocab(task)
    model.eval()
    correct = total = 0
    buckets: dict[str, list[int]] = {}
    edges = [40, 64, 128, 192, 257] if task.kind == "formal" else None
    for i in range(math.ceil(ev.samples / ev.batch_size)):
        rng = np.random.default_rng([ev.seed, i])
        b = draw(task, rng, min(ev.batch_size, ev.samples - i * ev.batch_size), split)
        x, y, mask = to_tensors(b)
        hit = (masked_logits(model, x, mask).argmax(-1) == y[mask]).numpy()
        correct += int(hit.sum())
        total += hit.size
        if edges is not None:
            row = np.repeat(np.arange(len(b.lengths)), b.mask.sum(1))
            for lo, hi in zip(edges, edges[1:]):
                sel = (b.lengths[row] >= lo) & (b.lengths[row] < hi)
                c = buckets.setdefault(f"{lo}-{hi - 1}", [0, 0])
                c[0] += int(hit[sel].sum())
                c[1] += int(sel.sum())
    acc = correct / total
    out = {"accuracy": acc, "scaled_accuracy": (acc - s_rand) / (1 - s_rand), "counted_tokens": total}
    if buckets:
        out["by_length"] = {k: (c / n - s_rand) / (1 - s_rand) for k, (c, n) in buckets.items() if n}
    return out


def train_one(recipe: SyntheticRecipe, model_name: str, out_dir: str | Path = "runs/synthetic",
              progress: bool = True) -> dict:
    if model_name not in recipe.models:
        raise ValueError(f"model {model_name!r} is not in the recipe; it has {sorted(recipe.models)}")
    c = recipe.train
    if c.threads:
        torch.set_num_threads(c.threads)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    L.seed_everything(c.seed, verbose=False)
    vocab, _ = task_vocab(recipe.task)
    model = build_model(recipe.models[model_name], vocab)
    module = SyntheticModule(model, recipe)
    trainer = L.Trainer(max_steps=c.steps, accelerator="cpu" if not torch.cuda.is_available() else "auto",
                        devices=1, gradient_clip_val=c.grad_clip or None, logger=False, enable_checkpointing=False,
                        enable_progress_bar=progress, enable_model_summary=False, num_sanity_val_steps=0)
    t0 = time.perf_counter()
    trainer.fit(module, DataLoader(Batches(recipe.task, c.batch_size, c.seed), batch_size=None))
    train_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    result = evaluate(model, recipe)
    result.update(task=recipe.task.label, model=model_name, recipe=recipe.name, steps=c.steps,
                  batch_size=c.batch_size, lr=c.lr, seed=c.seed, train_s=train_s, eval_s=time.perf_counter() - t1,
                  parameters=sum(p.numel() for p in model.parameters()),
                  final_train_loss=float(np.mean([h[1] for h in module.history[-50:]])))
    out = Path(out_dir) / recipe.task.label
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{model_name}.json").write_text(json.dumps(result, indent=1))
    torch.save({"spec": recipe.models[model_name], "vocab_size": vocab, "state_dict": model.state_dict()},
               out / f"{model_name}.pt")
    _plot(module.history, out / f"{model_name}.png", f"{recipe.task.label}: {model_name}")
    return result


def _plot(history, path, title):
    steps = np.array([h[0] for h in history])
    loss = np.array([h[1] for h in history])
    acc = np.array([h[2] for h in history])
    k = max(1, len(steps) // 200)
    smooth = lambda v: np.convolve(v, np.ones(k) / k, mode="valid")  # noqa: E731
    with figure(path, title, "step", "cross-entropy", dpi=100) as (fig, ax):
        ax.plot(steps[k - 1:], smooth(loss), label="training loss (counted positions)")
        ax2 = ax.twinx()
        ax2.plot(steps[k - 1:], smooth(acc), color="C1", label="training accuracy")
        ax2.set_ylim(0, 1.02)
        ax2.set_ylabel("accuracy")
        handles = ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
        ax.legend(handles, [h.get_label() for h in handles], loc="upper center", bbox_to_anchor=(0.5, -0.18),
                  ncol=2, frameon=False)  # below the axes, never over the curves
