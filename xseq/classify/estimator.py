"""XLSTMClassifier: a scikit-learn sequence classifier around ClassifierNet, trained with Lightning."""
from __future__ import annotations

import copy
import time

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import train_test_split
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d
from torch.utils.data import DataLoader, TensorDataset

from ..common.callbacks import KeepBest
from ..common.optim import optimizer_groups
from ..common.quiet import check_verbose, quiet_lightning, show_progress
from ..common.schedules import one_cycle
from ..common.threads import torch_threads
from ..nn import XLSTMConfig
from .model import ClassifierNet
from .sequences import as_sequences, channel_stats, pad


class XLSTMClassifier(ClassifierMixin, BaseEstimator):
    """Classify whole sequences with an xLSTM encoder (see xseq.classify.model).

    X: an array (n, T) or (n, T, C), or a list of (T_i, C) arrays of different lengths; y: any labels
    (strings too). Channels are scaled with statistics of the training data. A stratified `val_size` part
    of the training data drives early stopping (the best weights on validation are kept); val_size=0 trains
    for `max_epochs` on everything. The prediction for a sequence depends on that sequence alone.

    Output while fitting (scikit-learn's convention): verbose=0 prints nothing, verbose=1 (the default, or
    True) Lightning's progress bar only, verbose=2 also Lightning's own messages and warnings.
    progress_bar=False turns the bar off at any level (as before verbose existed)."""

    def __init__(self, *, d_model: int = 64, layout: str = "ms", num_heads: int = 4, dropout: float = 0.0,
                 max_epochs: int = 200, batch_size: int = 16, learning_rate: float = 3e-3,
                 weight_decay: float = 0.05, label_smoothing: float = 0.0, patience: int = 30,
                 val_size: float = 0.0, accelerator: str = "cpu", threads: int | None = None, seed: int = 0,
                 progress_bar: bool = True, verbose: int = 1):
        self.d_model, self.layout, self.num_heads, self.dropout = d_model, layout, num_heads, dropout
        self.max_epochs, self.batch_size, self.learning_rate = max_epochs, batch_size, learning_rate
        self.weight_decay, self.label_smoothing, self.patience = weight_decay, label_smoothing, patience
        self.val_size, self.accelerator, self.threads, self.seed = val_size, accelerator, threads, seed
        self.progress_bar, self.verbose = progress_bar, verbose

    # ------------------------------------------------------------------ fit
    def fit(self, X, y) -> "XLSTMClassifier":
        self._check_params()
        seqs = as_sequences(X)
        if y is None:
            raise ValueError("this estimator requires y to be passed, but the target y is None")
        y = column_or_1d(y, warn=True)
        if len(y) != len(seqs):
            raise ValueError(f"y must hold one label per sequence ({len(seqs)}); got {len(y)}")
        check_classification_targets(y)
        classes, codes = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise ValueError(f"y has one class only ({classes[0]!r}); a classifier needs at least 2 classes")
        idx = np.arange(len(seqs))
        train, val = idx, idx[:0]
        if self.val_size:
            counts = np.bincount(codes)
            stratify = codes if counts.min() >= 2 else None
            n_val = self.val_size if self.val_size >= 1 else max(len(classes), int(round(self.val_size * len(seqs))))
            if len(seqs) - n_val < 1:
                raise ValueError(f"val_size={self.val_size!r} leaves no training sequences (of {len(seqs)})")
            train, val = train_test_split(idx, test_size=int(n_val), stratify=stratify, random_state=self.seed)
        mean, std = channel_stats([seqs[i] for i in train])
        Xp, lengths = pad(seqs)
        target = torch.as_tensor(codes, dtype=torch.long)

        with self._torch_settings(), quiet_lightning(self.verbose):
            L.seed_everything(self.seed, verbose=False)
            net = self._build_net(Xp.shape[-1], len(classes))
            net.set_scaling(mean, std)
            module = (_ValidatedModule if len(val) else _Module)(net, Xp, lengths, target, self)
            callbacks = []
            keep = None
            if len(val):
                keep = KeepBest("val_loss")
                callbacks += [keep, L.pytorch.callbacks.EarlyStopping("val_loss", patience=self.patience)]
            trainer = L.Trainer(max_epochs=self.max_epochs, accelerator=self.accelerator, devices=1, logger=False,
                                callbacks=callbacks, enable_checkpointing=False,
                                enable_progress_bar=show_progress(self.verbose, self.progress_bar),
                                enable_model_summary=False,
                                num_sanity_val_steps=0, log_every_n_steps=1)
            g = torch.Generator().manual_seed(self.seed)
            train_dl = DataLoader(TensorDataset(torch.as_tensor(train)), batch_size=self.batch_size, shuffle=True,
                                  generator=g)
            val_dl = DataLoader(TensorDataset(torch.as_tensor(val)), batch_size=256) if len(val) else None
            t0 = time.perf_counter()
            trainer.fit(module, train_dl, val_dl)
            self.train_time_ = time.perf_counter() - t0
            if keep is not None and keep.best_state is not None:
                net.load_state_dict(keep.best_state)
                self.best_epoch_, self.best_val_loss_ = keep.best_epoch, keep.best_score
            self.n_epochs_ = trainer.current_epoch
        self.net_ = net.cpu().eval()
        self.classes_ = classes
        self.n_channels_ = Xp.shape[-1]
        return self

    # ------------------------------------------------------------------ predict
    def predict_proba(self, X) -> np.ndarray:
        check_is_fitted(self, "net_")
        seqs = as_sequences(X, n_features=self.n_channels_)
        out = []
        order = np.argsort([len(s) for s in seqs], kind="stable")  # batch similar lengths together
        # float64 inference: a sequence's probabilities then agree whatever it is batched with to ~1e-12
        # (float32 batched matrix products differ at ~1e-7 with the batch's size and padding)
        net = copy.deepcopy(self.net_).double()
        with torch.inference_mode(), self._torch_settings():
            for s in range(0, len(seqs), 512):
                rows = order[s:s + 512]
                x, lengths = pad([seqs[i] for i in rows])
                out.append(torch.softmax(net(x.double(), lengths), dim=-1).numpy())
        probs = np.empty((len(seqs), len(self.classes_)))
        probs[order] = np.concatenate(out)
        return probs

    def predict(self, X) -> np.ndarray:
        probs = self.predict_proba(X)
        return self.classes_[probs.argmax(axis=1)]

    def stream(self, batch_size: int = 1, device=None):
        """An xseq.Stream: update(x_t) takes one observation (batch_size, n_features) per row and returns
        the class probabilities (batch_size, n_classes) for each row's sequence so far, equal to
        predict_proba on that prefix."""
        check_is_fitted(self, "net_")
        from ..nn.stream import Stream
        from .streaming import ClassifierCore
        device = torch.device("cpu" if device is None else device)
        return Stream(ClassifierCore(self, device), batch_size, device=device)

    # ------------------------------------------------------------------ helpers
    def _build_net(self, n_features: int, n_classes: int) -> ClassifierNet:
        cfg = XLSTMConfig(d_model=self.d_model, layout=self.layout, dropout=self.dropout,
                          mlstm=dict(num_heads=self.num_heads), slstm=dict(num_heads=self.num_heads))
        return ClassifierNet(n_features, n_classes, cfg, dropout=self.dropout)

    def _check_params(self) -> None:
        for name in ("d_model", "num_heads", "max_epochs", "batch_size", "patience"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be a positive int; got {v!r}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1); got {self.dropout!r}")
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(f"label_smoothing must be in [0, 1); got {self.label_smoothing!r}")
        if not (isinstance(self.val_size, (int, float)) and self.val_size >= 0):
            raise ValueError(f"val_size must be a fraction in [0, 1) or a number of sequences; got {self.val_size!r}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0; got {self.learning_rate!r}")
        check_verbose(self.verbose)

    def _torch_settings(self):
        return torch_threads(self.threads)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        return tags


class _Module(L.LightningModule):
    def __init__(self, net: ClassifierNet, X: torch.Tensor, lengths: torch.Tensor, target: torch.Tensor, cfg):
        super().__init__()
        self.net, self.X, self.lengths, self.target, self.cfg = net, X, lengths, target, cfg

    def _batch(self, batch):
        rows = batch[0].cpu()
        lengths = self.lengths[rows]
        x = self.X[rows, :int(lengths.max())]
        return x.to(self.device), lengths.to(self.device), self.target[rows].to(self.device)

    def training_step(self, batch, _):
        x, lengths, y = self._batch(batch)
        loss = F.cross_entropy(self.net(x, lengths), y, label_smoothing=self.cfg.label_smoothing)
        self.log("train_loss", loss, prog_bar=True, batch_size=len(y))
        return loss

    def configure_optimizers(self):
        opt = torch.optim.AdamW(optimizer_groups(self.net, self.cfg.weight_decay), lr=self.cfg.learning_rate)
        total = max(1, self.trainer.estimated_stepping_batches)
        sched = one_cycle(opt, self.cfg.learning_rate, total)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


class _ValidatedModule(_Module):
    """_Module with a validation step, used only with a validation split (a validation_step without a val
    loader makes Lightning warn that it skips the val loop)."""

    def validation_step(self, batch, _):
        x, lengths, y = self._batch(batch)
        logits = self.net(x, lengths)
        self.log("val_loss", F.cross_entropy(logits, y), prog_bar=True, batch_size=len(y))
        self.log("val_acc", (logits.argmax(-1) == y).float().mean(), prog_bar=True, batch_size=len(y))
