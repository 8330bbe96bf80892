"""XLSTMClassifier: a scikit-learn sequence classifier around ClassifierNet, trained with Lightning."""
from __future__ import annotations

import copy
import math
import time

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import train_test_split
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d
from threadpoolctl import threadpool_limits
from torch.utils.data import DataLoader, TensorDataset

from ..common.callbacks import AtomicCheckpointIO, KeepBest, checkpointing, digest, settings_of
from ..common.optim import optimizer_groups
from ..common.quiet import check_verbose, quiet_lightning, show_progress
from ..common.schedules import one_cycle
from ..common.threads import torch_threads
from ..nn import XLSTMConfig
from .kernels import PATTERNS, CausalKernels, dilations_for
from .model import ClassifierNet
from .ridge import fit_ridge
from .sequences import as_sequences, channel_stats, pad

# the default size rules (XLSTMClassifier._resolve_sizes)
TOKENS, EPOCHS_PER_PATCH, EPOCHS_MIN, EPOCHS_MAX = 32, 2, 2, 60


class XLSTMClassifier(ClassifierMixin, BaseEstimator):
    """Classify whole sequences with an xLSTM encoder (see xseq.classify.model).

    X: an array (n, T) or (n, T, C), or a list of (T_i, C) arrays of different lengths; y: any labels
    (strings too). Channels are scaled with statistics of the training data. The logits are the sum of a causal
    random-kernel part (kernel_features; a closed-form ridge read-out) and an xLSTM part (xlstm; trained on what
    the kernel part leaves): see xseq.classify.model, and _resolve_sizes for the defaults drawn from the data.
    A stratified `val_size` part of the training data drives early stopping of the xLSTM part (the best weights
    on validation are kept, or the untrained xLSTM part, which adds nothing, where no epoch beats the kernel
    part alone); val_size=0 trains for `max_epochs` on everything. The prediction for a sequence depends on that
    sequence alone.

    Output while fitting (scikit-learn's convention): verbose=0 prints nothing, verbose=1 (the default, or
    True) Lightning's progress bar only, verbose=2 also Lightning's own messages and warnings.
    progress_bar=False turns the bar off at any level (as before verbose existed).

    Checkpoints: with `checkpoint_dir` (default None: none), the xLSTM training writes checkpoint_dir/last.ckpt
    after every epoch (weights, optimizer, schedule, epoch, RNG and shuffling states, the best-on-validation
    weights so far, classes and channel scaling). A fit that finds one written by a fit of the same data and
    settings resumes from it and ends where the uninterrupted fit would have (the same weights on one CPU
    process); one of other data or settings is a ValueError naming checkpoint_dir. verbose, progress_bar and
    threads may differ."""

    def __init__(self, *, kernel_features: int = 10_000, xlstm: bool = True, patch: int | None = None,
                 d_model: int | None = None, layout: str = "ms", num_heads: int = 4, dropout: float = 0.0,
                 max_epochs: int | None = None, batch_size: int = 16, learning_rate: float = 3e-3,
                 weight_decay: float = 0.05, label_smoothing: float = 0.0, patience: int = 30,
                 val_size: float = 0.0, accelerator: str = "cpu", threads: int | None = None, seed: int = 0,
                 progress_bar: bool = True, verbose: int = 1, checkpoint_dir: str | None = None):
        self.kernel_features, self.xlstm, self.patch = kernel_features, xlstm, patch
        self.d_model, self.layout, self.num_heads, self.dropout = d_model, layout, num_heads, dropout
        self.max_epochs, self.batch_size, self.learning_rate = max_epochs, batch_size, learning_rate
        self.weight_decay, self.label_smoothing, self.patience = weight_decay, label_smoothing, patience
        self.val_size, self.accelerator, self.threads, self.seed = val_size, accelerator, threads, seed
        self.progress_bar, self.verbose = progress_bar, verbose
        self.checkpoint_dir = checkpoint_dir

    # ------------------------------------------------------------------ fit
    def fit(self, X, y) -> "XLSTMClassifier":
        self._check_params()
        seqs = as_sequences(X)
        if y is None:
            raise ValueError("this estimator requires y to be passed, but the target y is None")
        try:  # scikit-learn's messages do not say which argument: they are about y
            y = column_or_1d(y, warn=True)
            check_classification_targets(y)
        except ValueError as e:
            raise ValueError(f"y: {e}") from None
        if len(y) != len(seqs):
            raise ValueError(f"y must hold one label per sequence ({len(seqs)}); got {len(y)}")
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
            if min(int(n_val), len(seqs) - int(n_val)) < len(classes):  # too few rows for every class on each side
                stratify = None
            train, val = train_test_split(idx, test_size=int(n_val), stratify=stratify, random_state=self.seed)
        mean, std = channel_stats([seqs[i] for i in train])
        Xp, lengths = pad(seqs)
        target = torch.as_tensor(codes, dtype=torch.long)
        self.net_shape_, self.max_epochs_ = self._resolve_sizes(len(train), int(lengths[train].max()), Xp.shape[-1])

        with self._torch_settings(), quiet_lightning(self.verbose):
            L.seed_everything(self.seed, verbose=False)
            net = self._build_net(Xp.shape[-1], len(classes))
            net.set_scaling(mean, std)
            t_kernels = time.perf_counter()
            offsets = self._fit_kernels(net, Xp, lengths, codes, train, val)
            self.train_time_ = time.perf_counter() - t_kernels
            self.n_epochs_ = 0
            if net.encoder is not None:  # the xLSTM part learns what the kernel part leaves
                module = (_ValidatedModule if len(val) else _Module)(net, Xp, lengths, target, offsets, self)
                callbacks = []
                keep = None
                if len(val):
                    # seeded with the untrained xLSTM part, whose zero head adds nothing: its epochs are kept only
                    # where they beat the kernel part alone on validation
                    start = (float(F.cross_entropy(offsets[val], target[val])), copy.deepcopy(net.state_dict())) \
                        if net.kernels is not None else (math.inf, None)
                    keep = KeepBest("val_loss", initial_score=start[0], initial_state=start[1])
                    callbacks += [keep, L.pytorch.callbacks.EarlyStopping("val_loss", patience=self.patience)]
                g = torch.Generator().manual_seed(self.seed)
                resume, more = self._checkpoints(g, Xp, lengths, target, train, val, classes, mean, std)
                trainer = L.Trainer(max_epochs=self.max_epochs_, accelerator=self.accelerator, devices=1, logger=False,
                                    callbacks=callbacks + more, enable_checkpointing=bool(more),
                                    plugins=[AtomicCheckpointIO()] if more else None,
                                    enable_progress_bar=show_progress(self.verbose, self.progress_bar),
                                    enable_model_summary=False,
                                    num_sanity_val_steps=0, log_every_n_steps=1)
                train_dl = DataLoader(TensorDataset(torch.as_tensor(train)), batch_size=self.batch_size, shuffle=True,
                                      generator=g)
                val_dl = DataLoader(TensorDataset(torch.as_tensor(val)), batch_size=256) if len(val) else None
                t0 = time.perf_counter()
                trainer.fit(module, train_dl, val_dl, ckpt_path=resume, weights_only=True if resume else None)
                self.train_time_ += time.perf_counter() - t0
                if keep is not None and keep.best_state is not None:
                    net.load_state_dict(keep.best_state)
                    self.best_epoch_, self.best_val_loss_ = keep.best_epoch, keep.best_score
                self.n_epochs_ = trainer.current_epoch
        self.net_ = net.cpu().eval()
        self.classes_ = classes
        self.n_channels_ = Xp.shape[-1]
        return self

    def _checkpoints(self, shuffle: torch.Generator, X, lengths, target, train, val, classes, mean, std):
        """Without checkpoint_dir: (None, []). With it: the checkpoint to resume from (checkpoint_dir/last.ckpt
        of a fit of the same data and settings; None to start afresh; a ValueError for another fit's) and the
        callbacks that write it after every epoch, with the shuffling generator's and the global RNG states."""
        if not self.checkpoint_dir:
            return None, []
        info = {"estimator": type(self).__name__, "settings": settings_of(self),
                "data": digest(X, lengths, target, train, val)}
        fitted = {"classes": classes.tolist(), "mean": torch.as_tensor(mean), "std": torch.as_tensor(std)}
        return checkpointing(self.checkpoint_dir, info, fitted, {"shuffle": shuffle})

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

    # ------------------------------------------------------------------ persistence
    def save(self, path) -> None:
        """Weights, classes and fitted state in a file that `XLSTMClassifier.load` reads with weights-only loading
        (unlike a pickle, opening it runs no code)."""
        check_is_fitted(self, "net_")
        from .persistence import save_classifier
        save_classifier(self, path)

    @classmethod
    def load(cls, path) -> "XLSTMClassifier":
        from .persistence import load_classifier
        return load_classifier(cls, path)

    # ------------------------------------------------------------------ helpers
    def _build_net(self, n_features: int, n_classes: int, shape: dict | None = None) -> ClassifierNet:
        """The network for `shape` (default: the fitted `net_shape_`, see _resolve_sizes)."""
        shape = self.net_shape_ if shape is None else shape
        cfg = None
        if self.xlstm:
            d = shape["d_model"]
            cfg = XLSTMConfig(d_model=d, layout=self.layout, dropout=self.dropout,
                              mlstm=dict(num_heads=self.num_heads), slstm=dict(num_heads=self.num_heads))
        kernels = None
        if self.kernel_features:
            kernels = CausalKernels(n_features, shape["dilations"], shape["biases_per_kernel"], seed=self.seed)
        return ClassifierNet(n_features, n_classes, cfg, dropout=self.dropout, kernels=kernels,
                             patch=shape["patch"])

    def _resolve_sizes(self, n: int, length: int, n_features: int) -> tuple[dict, int]:
        """The network's shape and the epoch count for n training sequences of up to `length` steps.

        Kernels: 32 dilation slots from 1 to (length - 1) / 8, and round(kernel_features / (84 * 32)) biases per
        kernel and slot (at least 1). xLSTM (each of patch / d_model / max_epochs when None): patches of
        max(1, round(length / TOKENS)) steps, so that the encoder sees about TOKENS steps per sequence; d_model
        32; epochs = round(EPOCHS_PER_PATCH * patch * sqrt(n_features)) clipped to [EPOCHS_MIN, EPOCHS_MAX]. An
        epoch of the xLSTM then costs about n * TOKENS token steps, so its training grows with n * length *
        sqrt(channels), as the kernel part's (and ROCKET's) does, rather than being a fixed number of epochs."""
        dilations = dilations_for(length)
        per_kernel = max(1, round(int(self.kernel_features) / (len(PATTERNS) * len(dilations))))
        patch = self.patch or max(1, round(length / TOKENS))
        d_model = self.d_model or 32
        epochs = self.max_epochs or int(np.clip(round(EPOCHS_PER_PATCH * patch * np.sqrt(n_features)),
                                                EPOCHS_MIN, EPOCHS_MAX))
        shape = {"d_model": int(d_model), "patch": int(patch), "dilations": dilations, "biases_per_kernel": per_kernel}
        return shape, epochs

    def _fit_kernels(self, net: ClassifierNet, Xp, lengths, codes, train, val) -> torch.Tensor:
        """Biases and ridge read-out of the kernel part on the training rows. Returns the kernel part's logits
        (n, n_classes) that the xLSTM part trains beside: leave-one-out ones for the training rows (so that
        the xLSTM part sees the kernel part's real errors, not its fit), plain ones for the validation rows."""
        offsets = torch.zeros(len(Xp), net.n_classes)
        if net.kernels is None:
            return offsets
        tr = torch.as_tensor(train)
        xs = net.scaled64(Xp)
        net.kernels.fit(xs[tr], lengths[tr], seed=self.seed)
        feats = net.kernels(xs, lengths).numpy()
        # numpy's BLAS gets torch's thread count: OpenBLAS's own threads, spinning beside other work on a small
        # machine, made this 67 x 10,752 Gram matrix 70 times slower (measured)
        with threadpool_limits(limits=torch.get_num_threads(), user_api="blas"):
            fit = fit_ridge(feats[train], codes[train], net.n_classes)
        net.set_ridge(fit)
        offsets[tr] = torch.as_tensor(fit.loo_logits, dtype=torch.float32)
        if len(val):
            offsets[torch.as_tensor(val)] = torch.as_tensor(fit.logits(feats[val]), dtype=torch.float32)
        return offsets

    def _check_params(self) -> None:
        for name in ("d_model", "num_heads", "max_epochs", "batch_size", "patience", "kernel_features", "patch"):
            v = getattr(self, name)
            if v is None and name in ("d_model", "max_epochs", "patch"):
                continue  # chosen from the data (_resolve_sizes)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < (name != "kernel_features"):
                what = "an int >= 0" if name == "kernel_features" else "a positive int"
                raise ValueError(f"{name} must be {what}; got {v!r}")
        if not isinstance(self.xlstm, (bool, np.bool_)):
            raise ValueError(f"xlstm must be True or False; got {self.xlstm!r}")
        if not self.xlstm and not self.kernel_features:
            raise ValueError("xlstm=False needs kernel_features > 0: the classifier would have no part left")
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
    """Trains the xLSTM part; `offsets` (n, n_classes) are the kernel part's fixed logits for each row."""

    def __init__(self, net: ClassifierNet, X: torch.Tensor, lengths: torch.Tensor, target: torch.Tensor,
                 offsets: torch.Tensor, cfg):
        super().__init__()
        self.net, self.X, self.lengths, self.target, self.cfg = net, X, lengths, target, cfg
        self.offsets = offsets

    def _batch(self, batch):
        rows = batch[0].cpu()
        lengths = self.lengths[rows]
        x = self.X[rows, :int(lengths.max())]
        return x.to(self.device), lengths.to(self.device), self.target[rows].to(self.device), rows

    def _logits(self, x, lengths, rows):
        return self.net.encoder_logits(x, lengths) + self.offsets[rows].to(self.device)

    def training_step(self, batch, _):
        x, lengths, y, rows = self._batch(batch)
        loss = F.cross_entropy(self._logits(x, lengths, rows), y, label_smoothing=self.cfg.label_smoothing)
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
        x, lengths, y, rows = self._batch(batch)
        logits = self._logits(x, lengths, rows)
        self.log("val_loss", F.cross_entropy(logits, y), prog_bar=True, batch_size=len(y))
        self.log("val_acc", (logits.argmax(-1) == y).float().mean(), prog_bar=True, batch_size=len(y))
