"""The runs of the kill-and-resume tests: each builds its data and settings here (the same in the test process and
in its subprocesses), fits, and writes its final weights and metrics to a file with torch.save.

A subprocess runs one with `python -c "from tests.reliability.jobs import NAME; NAME(...)"` from the repository
root; the LM and RL runs go through the command line (`xseq lm train`, `xseq rl train`) instead."""
from __future__ import annotations

import random

import numpy as np
import pandas as pd
import torch
import yaml

# dropout on, so that resuming must restore the global RNG; three stages (point, refit, quantiles); no early
# stopping (patience > max_epochs), so that the number of checkpoints written is known in advance
FORECASTER = dict(horizon=8, lookback=32, patch_len=8, d_model=16, layout="ms", num_heads=2, dropout=0.1,
                  max_epochs=4, batch_size=16, max_train_windows=256, learning_rate=3e-3, patience=100,
                  quantiles=[0.1, 0.9], quantile_epochs=2, refit=True, threads=1, seed=3, verbose=0)
FORECASTER_METRICS = ("ridge_", "best_val_loss_", "best_val_mse_", "best_epoch_", "initial_val_loss_",
                      "initial_val_mse_", "n_epochs_")

# a validation split (KeepBest and early stopping in the checkpoint), dropout and shuffling on
CLASSIFIER = dict(kernel_features=200, d_model=16, layout="ms", num_heads=2, dropout=0.2, max_epochs=6,
                  batch_size=8, val_size=0.25, patience=100, threads=1, seed=5, verbose=0)
CLASSIFIER_METRICS = ("best_epoch_", "best_val_loss_", "n_epochs_")


def forecaster_data() -> pd.DataFrame:
    """4 logistic maps (chaotic, r = 3.6 ... 3.84) with a little noise, 360 hourly steps: a nonlinear signal, so
    that training improves on the linear path on validation (a best epoch >= 0, and a refit stage that trains)."""
    rng = np.random.default_rng(0)
    cols = {}
    for i in range(4):
        x = np.empty(360)
        x[0], r = 0.2 + 0.1 * i, 3.6 + 0.08 * i
        for t in range(1, len(x)):
            x[t] = r * x[t - 1] * (1 - x[t - 1])
        cols[f"s{i}"] = x + 0.01 * rng.standard_normal(len(x))
    return pd.DataFrame(cols, index=pd.date_range("2021-01-01", periods=360, freq="h"))


def forecaster_result(model) -> dict:
    return {"weights": model.net_.state_dict(), "metrics": {k: getattr(model, k) for k in FORECASTER_METRICS},
            "forecast": torch.tensor(model.predict().to_numpy())}


def forecaster(checkpoint_dir, out, verbose: int = 0) -> None:
    from xseq import XLSTMForecaster
    model = XLSTMForecaster(**{**FORECASTER, "verbose": verbose}, checkpoint_dir=checkpoint_dir)
    torch.save(forecaster_result(model.fit(forecaster_data())), out)


def classifier_data():
    """3 classes of 2-channel sequences of 20 to 40 steps: sines of a class-specific frequency in as much noise."""
    rng = np.random.default_rng(1)
    X, y = [], []
    for i in range(96):
        c, T = i % 3, int(rng.integers(20, 41))
        t = np.arange(T)[:, None]
        X.append(np.sin(2 * np.pi * t * (c + 1) / 16 + rng.uniform(0, 6, 2)) + rng.standard_normal((T, 2)))
        y.append(f"class {c}")
    return X, np.array(y)


def classifier_result(model) -> dict:
    X, _ = classifier_data()
    return {"weights": model.net_.state_dict(), "metrics": {k: getattr(model, k) for k in CLASSIFIER_METRICS},
            "proba": torch.as_tensor(model.predict_proba(X))}


def classifier(checkpoint_dir, out, verbose: int = 0) -> None:
    from xseq import XLSTMClassifier
    model = XLSTMClassifier(**{**CLASSIFIER, "verbose": verbose}, checkpoint_dir=checkpoint_dir)
    torch.save(classifier_result(model.fit(*classifier_data())), out)


def lm_recipe(folder, out_dir) -> str:
    """A 2-block xLSTM[1:1] char LM with dropout on a small grammar corpus; a checkpoint every 4 steps."""
    rng = random.Random(0)
    subjects, verbs, objects = ["the cat", "a dog", "my friend", "the king"], ["sees", "likes", "finds"], \
        ["the ball.", "a crown.", "the sea.", "bread."]
    corpus = folder / "grammar.txt"
    if not corpus.exists():
        corpus.write_text("\n".join(f"{rng.choice(subjects)} {rng.choice(verbs)} {rng.choice(objects)}"
                                    for _ in range(2000)))
    recipe = {"model": {"vocab_size": None, "encoder": {"d_model": 32, "layout": "ms", "dropout": 0.1,
                                                       "mlstm": {"num_heads": 2}, "slstm": {"num_heads": 2}}},
              "data": {"path": str(corpus), "tokenizer": "char", "cache_dir": str(folder / "cache")},
              "train": {"context_length": 32, "batch_size": 8, "max_steps": 28, "lr": 3e-3, "warmup_steps": 4,
                        "precision": "32-true", "accelerator": "cpu", "devices": 1, "val_interval": 4,
                        "val_batches": 2, "seed": 3, "deterministic": True, "out_dir": str(out_dir)}}
    path = folder / f"{out_dir.name}.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return str(path)


def rl_recipe(folder) -> str:
    """Recurrent PPO (mLSTM) on the memory task CueRecall: a checkpoint and an evaluation after every rollout."""
    path = folder / "cue.yaml"
    path.write_text(yaml.safe_dump({"ppo": {
        "env": "xseq/CueRecall-v0", "env_kwargs": {"delay": 3}, "num_envs": 4, "rollout_steps": 32,
        "minibatch_size": 64, "epochs": 2, "eval_interval": 128, "eval_episodes": 4, "total_steps": 1024,
        "threads": 1, "encoder": "xlstm", "xlstm": {"d_model": 16, "layout": "m", "mlstm": {"num_heads": 2}}}}))
    return str(path)
