"""Killed and resumed: each trainer runs in a subprocess that is SIGKILLed at a random point after a checkpoint
(seeded, so the point is the same on every run of the test), then resumes in a new subprocess from its last
checkpoint, and must end with the same weights and metrics, bit for bit (torch.equal, ==), as a run that was
never interrupted (run in this process; that writing checkpoints changes nothing is test_resume_rules'). All of
these runs are deterministic on one CPU thread: a resumed run restores the global RNG states (dropout), the
shuffling generators and early stopping's state with the weights, optimizer and schedule. For the estimators the
last checkpoints of both runs are compared too (the last epoch's weights, not only the best ones kept).

The kill point: after checkpoint k (k drawn among the run's checkpoints but the last two) and a random part of
the next epoch (or step), so that a kill can land while a checkpoint is being written. The forecaster is killed
twice, in two of its three stages.

The long version: XSEQ_KILL_SEEDS="1 2 3 ..." runs every test once per seed of the kill point (CI: one fixed seed
per trainer), e.g. XSEQ_KILL_SEEDS="$(seq 1 20)" .venv/bin/python -m pytest tests/reliability -k killed."""
from __future__ import annotations

import csv
import os
import random

import pytest
import torch

from xseq import XLSTMClassifier, XLSTMForecaster
from xseq.cli import main
from xseq.common.threads import torch_threads
from xseq.lm import LMRecipe, train

from . import jobs
from .kill import Writes, cli, kill_at_random, python, run

# each test starts two or three Python processes that import Lightning (seconds each): 20 to 40 s here
pytestmark = pytest.mark.slow

# the seeds of the kill points: None is each test's own fixed seed
SEEDS = [int(v) for v in os.environ.get("XSEQ_KILL_SEEDS", "").split()] or [None]
seeded = pytest.mark.parametrize("seed", SEEDS, ids=lambda v: "fixed" if v is None else f"seed{v}")

RESTORED = "Restoring states from the checkpoint path at"  # Lightning's own line (verbose=2) when it resumes


def assert_same(got, want, where: str) -> None:
    """Every tensor torch.equal, every other value ==, dicts by key and lists item by item."""
    if isinstance(want, dict):
        assert isinstance(got, dict) and got.keys() == want.keys(), where
        for key in want:
            assert_same(got[key], want[key], f"{where}.{key}")
    elif isinstance(want, (list, tuple)):
        assert isinstance(got, (list, tuple)) and len(got) == len(want), where
        for i, (g, w) in enumerate(zip(got, want)):
            assert_same(g, w, f"{where}[{i}]")
    elif isinstance(want, torch.Tensor):
        assert torch.equal(got, want), f"{where}: max |difference| {(got.double() - want.double()).abs().max():.3g}"
    else:
        assert got == want, f"{where}: {got!r} != {want!r}"


def training_state(path) -> dict:
    """What a Lightning checkpoint holds of the training itself: the last epoch's weights (not only the best that
    the estimator keeps), optimizer, schedule, progress, and the callbacks' states (KeepBest, early stopping, the
    RNG states) but for ModelCheckpoint's, which names its folder."""
    ck = torch.load(path, weights_only=True)
    callbacks = {k: v for k, v in ck["callbacks"].items() if not k.startswith("ModelCheckpoint")}
    return {"weights": ck["state_dict"], "optimizer": ck["optimizer_states"], "schedule": ck["lr_schedulers"],
            "epoch": ck["epoch"], "step": ck["global_step"], "callbacks": callbacks}


def job(name: str, *args, **kwargs) -> list[str]:
    call = ", ".join([*(repr(str(a)) for a in args), *(f"{k}={v!r}" for k, v in kwargs.items())])
    return python(f"from tests.reliability.jobs import {name}; {name}({call})")


@seeded
def test_forecaster(seed, tmp_path):
    settings, base = jobs.FORECASTER, tmp_path / "uninterrupted"
    want = jobs.forecaster_result(XLSTMForecaster(**settings, checkpoint_dir=base).fit(jobs.forecaster_data()))
    assert want["metrics"]["best_epoch_"] >= 0  # training beat the linear path: every stage trains
    stages = {"point": settings["max_epochs"], "refit": want["metrics"]["best_epoch_"] + 1,
              "quantiles": settings["quantile_epochs"]}
    folder, out = tmp_path / "checkpoints", tmp_path / "result.pt"
    rng = random.Random(16 if seed is None else seed)
    writes, total = Writes(lambda: sorted(folder.glob("*/last.ckpt"))), sum(stages.values())
    # killed twice: in the point stage (checkpoint 3 of 4), then in the resumed run during the refit stage
    kill = [kill_at_random(job("forecaster", folder, out), writes, total - 1, rng, tmp_path / "killed.log")]
    kill.append(kill_at_random(job("forecaster", folder, out), writes, total, rng, tmp_path / "killed_again.log",
                               after=kill[0]["seen"]))
    assert not out.exists() and any(folder.glob("*/last.ckpt")), kill
    log = run(job("forecaster", folder, out, verbose=2), tmp_path / "resumed.log")
    assert RESTORED in log, kill  # it resumed (a fresh start would end the same: it is deterministic)
    print(f"forecaster: killed at {kill} of {stages} checkpoints")
    assert_same(torch.load(out, weights_only=True), want, f"forecaster killed at {kill}")
    for stage in stages:
        assert_same(training_state(folder / stage / "last.ckpt"), training_state(base / stage / "last.ckpt"),
                    f"{stage} stage, killed at {kill}")


@seeded
def test_classifier(seed, tmp_path):
    X, y = jobs.classifier_data()
    base = tmp_path / "uninterrupted"
    want = jobs.classifier_result(XLSTMClassifier(**jobs.CLASSIFIER, checkpoint_dir=base).fit(X, y))
    assert want["metrics"]["n_epochs_"] == jobs.CLASSIFIER["max_epochs"]  # no early stop: the checkpoints are known
    folder, out = tmp_path / "checkpoints", tmp_path / "result.pt"
    writes = Writes(lambda: [folder / "last.ckpt"])
    rng = random.Random(1 if seed is None else seed)
    kill = kill_at_random(job("classifier", folder, out), writes, jobs.CLASSIFIER["max_epochs"], rng,
                          tmp_path / "killed.log")
    assert not out.exists(), kill
    log = run(job("classifier", folder, out, verbose=2), tmp_path / "resumed.log")
    assert RESTORED in log, kill
    print(f"classifier: killed at {kill} of {jobs.CLASSIFIER['max_epochs']} checkpoints")
    assert_same(torch.load(out, weights_only=True), want, f"classifier killed at {kill}")
    assert_same(training_state(folder / "last.ckpt"), training_state(base / "last.ckpt"), f"killed at {kill}")


TIMING = {"steps_per_s", "rollout_s", "update_s"}


def rows(path) -> list[dict]:
    with open(path) as f:
        return [{k: v for k, v in r.items() if k not in TIMING} for r in csv.DictReader(f)]


@seeded
def test_recurrent_ppo_cli(seed, tmp_path, capsys):
    recipe = jobs.rl_recipe(tmp_path)
    base, run_dir = tmp_path / "base", tmp_path / "run"
    assert main(["rl", "train", recipe, "--log-dir", str(base), "--quiet"]) == 0
    want_line = capsys.readouterr().out.strip().split("; ")[0]  # the final return; then a speed
    want = torch.load(base / "checkpoint.pt", weights_only=True)
    total = want["num_timesteps"] // 128 + 1  # one checkpoint per rollout, and the final one again
    writes = Writes(lambda: [run_dir / "checkpoint.pt"])
    kill = kill_at_random(cli("rl", "train", recipe, "--log-dir", run_dir, "--no-progress"), writes, total,
                          random.Random(3 if seed is None else seed), tmp_path / "killed.log")
    killed_at = torch.load(run_dir / "checkpoint.pt", weights_only=True)["num_timesteps"]
    assert 0 < killed_at < want["num_timesteps"], kill
    log = run(cli("rl", "train", recipe, "--log-dir", run_dir, "--no-progress", "--resume"), tmp_path / "resumed.log")
    assert f"from {killed_at:,} to {want['num_timesteps']:,} env steps" in log, kill
    print(f"rl: killed at {kill} of {total} checkpoints, resumed from env step {killed_at}")
    assert log.strip().splitlines()[-1].split("; ")[0] == want_line, kill
    got = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    assert_same(got["policy"], want["policy"], f"policy, killed at {kill}")
    assert_same(got["optimizer"]["state"], want["optimizer"]["state"], f"optimizer, killed at {kill}")
    assert [{k: v for k, v in r.items() if k not in TIMING} for r in got["log"]] == \
        [{k: v for k, v in r.items() if k not in TIMING} for r in want["log"]], kill
    assert rows(run_dir / "progress.csv") == rows(base / "progress.csv"), kill


@seeded
def test_lm_cli(seed, tmp_path):
    base_recipe, recipe = jobs.lm_recipe(tmp_path, tmp_path / "base"), jobs.lm_recipe(tmp_path, tmp_path / "run")
    with torch_threads(1):  # as the subprocesses (OMP_NUM_THREADS=1)
        train(LMRecipe.from_yaml(base_recipe), progress=False, verbose=False)
    want = torch.load(tmp_path / "base" / "checkpoints" / "last.ckpt", weights_only=True)
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    total = want["global_step"] // 4  # a checkpoint after every validation
    kill = kill_at_random(cli("lm", "train", recipe, "--no-progress"), Writes(lambda: [last]), total,
                          random.Random(4 if seed is None else seed), tmp_path / "killed.log")
    killed_at = torch.load(last, weights_only=True)["global_step"]
    assert 0 < killed_at < want["global_step"], kill
    log = run(cli("lm", "train", recipe, "--no-progress", "--resume", "last"), tmp_path / "resumed.log")
    assert f"resuming {last} up to step {want['global_step']}" in log, kill
    print(f"lm: killed at {kill} of {total} checkpoints, resumed from step {killed_at}")
    got = torch.load(last, weights_only=True)
    assert got["global_step"] == want["global_step"]
    assert_same(got["state_dict"], want["state_dict"], f"weights, killed at {kill}")
    assert got["xseq_history"] == want["xseq_history"], kill  # every step's training loss and every validation
    assert (tmp_path / "run" / "curve.csv").read_text() == (tmp_path / "base" / "curve.csv").read_text()
