"""The rules of resuming, in-process and cheap: what checkpoint_dir holds, that a finished (early-stopped) fit
resumed from its last checkpoint ends where it ended, that a checkpoint of other settings or data is a ValueError
naming checkpoint_dir, and that `xseq rl train --resume` rewrites progress.csv from the checkpoint's own log."""
from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from xseq import XLSTMClassifier, XLSTMForecaster
from xseq.cli import main

from . import jobs

TINY = dict(horizon=4, lookback=16, patch_len=8, d_model=8, layout="m", num_heads=2, max_epochs=2, batch_size=64,
            threads=1, verbose=0)


def restored(records) -> list[str]:
    return [r.getMessage() for r in records if r.getMessage().startswith("Restoring states from the checkpoint")]


def test_forecaster_writes_one_checkpoint_per_stage_and_resumes_a_finished_fit(tmp_path, lightning_log):
    y = jobs.forecaster_data()
    first = XLSTMForecaster(**TINY, quantiles=[0.2], quantile_epochs=1, checkpoint_dir=tmp_path).fit(y)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()) == \
        ["point/last.ckpt", "quantiles/last.ckpt"]  # no temporary files left behind
    ck = torch.load(tmp_path / "point" / "last.ckpt", weights_only=True)
    state = ck["callbacks"]["xseq.Resumable"]
    assert ck["epoch"] == TINY["max_epochs"] - 1 and "optimizer_states" in ck and "KeepBest" in ck["callbacks"]
    assert torch.equal(state["fitted"]["scale"], torch.as_tensor(first.scale_))
    assert state["info"]["settings"]["max_epochs"] == "2" and "verbose" not in state["info"]["settings"]
    again = XLSTMForecaster(**{**TINY, "verbose": 2, "threads": 1}, quantiles=[0.2], quantile_epochs=1,
                            checkpoint_dir=tmp_path).fit(y)
    assert len(restored(lightning_log)) == 2  # both stages, from their finished checkpoints: nothing trained again
    for (k, a), b in zip(first.net_.state_dict().items(), again.net_.state_dict().values()):
        assert torch.equal(a, b), k
    assert (again.best_epoch_, again.best_val_loss_, again.n_epochs_) == \
        (first.best_epoch_, first.best_val_loss_, first.n_epochs_)


def test_checkpoints_change_nothing(tmp_path):
    """Writing checkpoints draws no random numbers and changes no weights (dropout on)."""
    y = jobs.forecaster_data()
    plain = XLSTMForecaster(**TINY, dropout=0.2, val_size=0).fit(y)  # no KeepBest: the last epoch's weights
    checkpointed = XLSTMForecaster(**TINY, dropout=0.2, val_size=0, checkpoint_dir=tmp_path).fit(y)
    for (k, a), b in zip(plain.net_.state_dict().items(), checkpointed.net_.state_dict().values()):
        assert torch.equal(a, b), k


def test_an_early_stopped_fit_stays_stopped(tmp_path):
    """Early stopping is not in Lightning's loop state: resuming the last checkpoint of a run that stopped early
    must not train on (the Resumable callback records that it had stopped)."""
    X, y = jobs.classifier_data()
    settings = {**jobs.CLASSIFIER, "max_epochs": 30, "patience": 1, "learning_rate": 0.03}
    first = XLSTMClassifier(**settings, checkpoint_dir=tmp_path).fit(X, y)
    assert first.n_epochs_ < settings["max_epochs"]  # it did stop early
    again = XLSTMClassifier(**settings, checkpoint_dir=tmp_path).fit(X, y)
    assert again.n_epochs_ == first.n_epochs_ and again.best_epoch_ == first.best_epoch_
    for (k, a), b in zip(first.net_.state_dict().items(), again.net_.state_dict().values()):
        assert torch.equal(a, b), k
    assert torch.load(tmp_path / "last.ckpt", weights_only=True)["callbacks"]["xseq.Resumable"]["stopped"]


def test_a_checkpoint_of_another_fit_is_refused(tmp_path):
    y = jobs.forecaster_data()
    XLSTMForecaster(**TINY, checkpoint_dir=tmp_path).fit(y)
    with pytest.raises(ValueError, match=r"checkpoint_dir=.* holds the checkpoint of another fit .*max_epochs: 3 "
                                         r"here, 2 in the checkpoint"):
        XLSTMForecaster(**{**TINY, "max_epochs": 3}, checkpoint_dir=tmp_path).fit(y)
    with pytest.raises(ValueError, match=r"checkpoint_dir=.* holds the checkpoint of another fit \(it differs in the "
                                         r"data\)"):
        XLSTMForecaster(**TINY, checkpoint_dir=tmp_path).fit(y * 2)
    X, labels = jobs.classifier_data()
    clf = dict(kernel_features=0, d_model=8, layout="m", num_heads=2, max_epochs=1, threads=1, verbose=0)
    XLSTMClassifier(**clf, checkpoint_dir=tmp_path / "c").fit(X, labels)
    with pytest.raises(ValueError, match=r"checkpoint_dir=.*differs in the data"):
        XLSTMClassifier(**clf, checkpoint_dir=tmp_path / "c").fit(X[:-3], labels[:-3])
    with pytest.raises(ValueError, match=r"checkpoint_dir=.*differs in .*seed: 1 here, 0 in the checkpoint"):
        XLSTMClassifier(**clf, seed=1, checkpoint_dir=tmp_path / "c").fit(X, labels)
    (tmp_path / "other").mkdir()
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other" / "last.ckpt")
    with pytest.raises(ValueError, match=r"checkpoint_dir=.* holds last.ckpt, which no xseq fit wrote"):
        XLSTMClassifier(**clf, checkpoint_dir=tmp_path / "other").fit(X, labels)


def test_rl_resume_rewrites_the_log_from_the_checkpoint(tmp_path, capsys):
    """A run killed after writing its checkpoint but before logging that rollout: the resumed run's progress.csv
    still has every row (the checkpoint's log is the record)."""
    recipe = jobs.rl_recipe(tmp_path)
    out = tmp_path / "run"
    assert main(["rl", "train", recipe, "--log-dir", str(out), "--quiet", "--steps", "256"]) == 0
    with open(out / "progress.csv") as f:
        lines = f.readlines()
    (out / "progress.csv").write_text("".join(lines[:-1]))  # the row of step 256 never made it to the file
    assert main(["rl", "train", recipe, "--log-dir", str(out), "--quiet", "--resume", "--steps", "384"]) == 0
    with open(out / "progress.csv") as f:
        steps = [int(r["step"]) for r in csv.DictReader(f)]
    assert steps == [128, 256, 384]
    assert not list(out.glob(".*tmp*"))
    capsys.readouterr()


def test_digest_sees_dtype_shape_and_values():
    from xseq.common.callbacks import digest
    a = np.arange(6.0)
    assert digest(a) == digest(a.copy()) == digest(torch.arange(6.0, dtype=torch.float64))
    assert len({digest(a), digest(a.reshape(2, 3)), digest(a.astype(np.float32)), digest(a + 1e-12),
                digest(a, None), digest(None, a)}) == 6


def test_ensemble_members_checkpoint_into_their_own_folders(tmp_path):
    from xseq import ForecastEnsemble
    y = jobs.forecaster_data()
    base = XLSTMForecaster(**TINY, checkpoint_dir=tmp_path)
    first = ForecastEnsemble(base, lookbacks=[16, 24]).fit(y)
    assert sorted(p.parent.parent.name for p in tmp_path.rglob("last.ckpt")) == ["lookback16-seed0", "lookback24-seed0"]
    again = ForecastEnsemble(base, lookbacks=[16, 24]).fit(y)  # both resumed from their finished checkpoints
    assert first.predict().equals(again.predict())
