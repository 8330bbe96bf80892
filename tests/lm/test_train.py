import csv
import subprocess
import sys

import pytest
import torch

from xseq.lm import LMRecipe, generate, load_model, perplexity, prepare, train

from .conftest import tiny_recipe


def curve(path):
    with open(path) as f:
        return [(int(r["step"]), r["split"], float(r["loss"])) for r in csv.DictReader(f)]


def test_train_tiny_recipe_learns_and_writes_its_outputs(tmp_path, corpus, capsys):
    recipe = LMRecipe.from_yaml(tiny_recipe(tmp_path, corpus, max_steps=60, val_interval=30))
    out = train(recipe, progress=False)
    printed = capsys.readouterr().out
    assert "training tokens/s" in printed and "s wall" in printed and out["tokens_per_s"] > 0
    train_losses = [loss for _, loss in out["history"]["train"]]
    assert len(train_losses) == 60 and [s for s, _ in out["history"]["val"]] == [30, 60]
    assert sum(train_losses[-10:]) / 10 < 0.6 * train_losses[0]  # from ~ln(23) towards the grammar's entropy
    run = tmp_path / "run"
    for name in ("learning_curve.png", "curve.csv", "recipe.yaml", "checkpoints/last.ckpt"):
        assert (run / name).is_file(), name
    model, rec = load_model(run / "checkpoints" / "last.ckpt")
    corpus_tokens = prepare(rec.data, verbose=False).tokens("val")
    r = perplexity(model, corpus_tokens, 16, max_windows=4 * 8)  # the same windows validation scored
    assert r["loss"] == pytest.approx(out["val_loss"], rel=1e-5)
    tok = prepare(rec.data, verbose=False).tokenizer
    text = tok.decode(generate(model, torch.tensor([tok.encode("the ")]), 30, greedy=True)[0])
    assert text.startswith("the ") and len(text) == 34


def test_resume_reproduces_the_uninterrupted_curve(tmp_path, corpus):
    whole = LMRecipe.from_yaml(tiny_recipe(tmp_path / "a", corpus))
    train(whole, progress=False, verbose=False)
    split = LMRecipe.from_yaml(tiny_recipe(tmp_path / "b", corpus))
    first = train(split, progress=False, verbose=False, max_steps=10)
    assert first["steps"] == 10
    train(split, progress=False, verbose=False, resume=str(tmp_path / "b" / "run" / "checkpoints" / "step10.ckpt"))
    a, b = curve(tmp_path / "a" / "run" / "curve.csv"), curve(tmp_path / "b" / "run" / "curve.csv")
    assert [(s, k) for s, k, _ in a] == [(s, k) for s, k, _ in b] and len(a) == 22
    assert max(abs(x[2] - y[2]) for x, y in zip(a, b)) <= 1e-6


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "xseq.cli", "lm", *args], capture_output=True, text=True)


def test_ddp_two_cpu_processes_match_one(tmp_path, corpus):
    path = tiny_recipe(tmp_path, corpus)
    one = run_cli("train", str(path), "--no-progress", "--set", f"train.out_dir={tmp_path / 'one'}")
    assert one.returncode == 0, one.stderr[-2000:]
    two = run_cli("train", str(path), "--no-progress", "--set", f"train.out_dir={tmp_path / 'two'}",
                  "--set", "train.devices=2", "--set", "train.strategy=ddp")
    assert two.returncode == 0, two.stderr[-2000:]
    assert "2 device(s) x micro-batch 4 x accumulate 1 = batch 8" in two.stdout
    a, b = curve(tmp_path / "one" / "curve.csv"), curve(tmp_path / "two" / "curve.csv")
    assert [(s, k) for s, k, _ in a] == [(s, k) for s, k, _ in b] and (20, "train") in [(s, k) for s, k, _ in a]
    assert max(abs(x[2] - y[2]) for x, y in zip(a, b)) <= 1e-4


def test_accumulation_matches_one_big_batch(tmp_path, corpus):
    big = train(LMRecipe.from_yaml(tiny_recipe(tmp_path / "a", corpus, max_steps=8)), progress=False, verbose=False)
    acc = train(LMRecipe.from_yaml(tiny_recipe(tmp_path / "b", corpus, max_steps=8, micro_batch_size=2)),
                progress=False, verbose=False)
    assert max(abs(x[1] - y[1]) for x, y in zip(big["history"]["train"], acc["history"]["train"])) <= 1e-5


def test_cli_generate_and_eval(tmp_path, corpus):
    path = tiny_recipe(tmp_path, corpus, max_steps=30)
    assert run_cli("train", str(path), "--no-progress").returncode == 0
    ckpt = str(tmp_path / "run" / "checkpoints" / "last.ckpt")
    g = run_cli("generate", ckpt, "--prompt", "the king", "--max-new-tokens", "20", "--top-k", "5")
    assert g.returncode == 0, g.stderr[-2000:]
    assert g.stdout.startswith("the king") and len(g.stdout.rstrip("\n")) >= 28
    e = run_cli("eval", ckpt, "--contexts", "16,64,256", "--no-progress")
    assert e.returncode == 0, e.stderr[-2000:]
    rows = [line.split() for line in e.stdout.splitlines() if line.strip() and line.split()[0].isdigit()]
    assert [r[0] for r in rows] == ["16", "64", "256"] and all(float(r[3]) > 1 for r in rows)
    bad = run_cli("train", str(path), "--set", "train.batch_size=7", "--set", "train.devices=2",
                  "--set", "train.strategy=ddp")
    assert bad.returncode == 2 and "divisible by the number of devices" in bad.stderr
