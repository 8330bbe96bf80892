"""Checkpoints are self-contained (model, recipe, tokenizer) and read weights-only; `--resume` continues to
train.max_steps in all; options fail with one-line errors; Lightning's banners only with --verbose."""
import csv
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.hostile import Payload
from xseq.lm import LMRecipe, load_model, train
from xseq.lm.cli import main as lm_main

from .conftest import tiny_recipe


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "xseq.cli", "lm", *args], capture_output=True, text=True)


def train_steps(run: Path) -> list[int]:
    with open(run / "curve.csv") as f:
        return [int(r["step"]) for r in csv.DictReader(f) if r["split"] == "train"]


def ckpt_step(path: Path) -> int:
    return torch.load(path, weights_only=True)["global_step"]


def test_resume_continues_to_the_new_total_and_says_when_there_is_nothing_to_do(tmp_path, corpus):
    path = tiny_recipe(tmp_path, corpus, max_steps=15, val_interval=10)
    run, last = tmp_path / "run", tmp_path / "run" / "checkpoints" / "last.ckpt"
    first = run_cli("train", str(path))  # default output: progress and xseq's lines, no Lightning banners
    assert first.returncode == 0, first.stderr[-2000:]
    for banner in ("GPU available", "litlogger", "LeafSpec", "Trainer.fit` stopped", "weights_only"):
        assert banner not in first.stderr + first.stdout, banner
    assert "[xseq lm] 15 steps" in first.stdout
    assert ckpt_step(last) == 15  # the steps after the last validation are checkpointed too

    more = run_cli("train", str(path), "--resume", "last", "--set", "train.max_steps=30", "--verbose",
                   "--no-progress")
    assert more.returncode == 0, more.stderr[-2000:]
    assert "GPU available" in more.stderr + more.stdout  # --verbose shows Lightning's own messages
    assert "15 steps (step 15 to 30)" in more.stdout
    assert train_steps(run) == list(range(1, 31)) and ckpt_step(last) == 30

    mtime = last.stat().st_mtime_ns
    for max_steps in ("30", "20"):
        again = run_cli("train", str(path), "--resume", "last", "--set", f"train.max_steps={max_steps}", "--quiet")
        assert again.returncode == 0, again.stderr[-2000:]
        lines = again.stdout.splitlines()
        assert len(lines) == 1 and "nothing to do" in lines[0] and "at step 30" in lines[0], again.stdout
    assert last.stat().st_mtime_ns == mtime and train_steps(run) == list(range(1, 31))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A run on its own copy of the corpus, which the tests may take away."""
    root = tmp_path_factory.mktemp("selfcontained")
    text = root / "data" / "grammar.txt"
    text.parent.mkdir()
    text.write_text("\n".join(["the cat sees the ball.", "a dog likes bread.", "the king finds a crown."] * 300))
    recipe = LMRecipe.from_yaml(tiny_recipe(root, text, max_steps=10))
    train(recipe, progress=False, verbose=False)
    return root / "run" / "checkpoints" / "last.ckpt", text


def test_generate_and_eval_need_nothing_but_the_checkpoint(trained, tmp_path, capsys):
    ckpt, text = trained
    hidden = text.with_suffix(".away")
    text.rename(hidden)
    try:
        lm_main(["generate", str(ckpt), "--prompt", "the ", "--max-new-tokens", "12", "--top-k", "3", "--quiet"])
        out = capsys.readouterr().out
        assert out.startswith("the ") and len(out.rstrip("\n")) == 16
        held_out = tmp_path / "held_out.txt"
        held_out.write_text("a dog sees the sea.\nthe cat likes a crown.\n" * 20)
        lm_main(["eval", str(ckpt), "--file", str(held_out), "--contexts", "8,32", "--quiet"])
        rows = [line.split() for line in capsys.readouterr().out.splitlines()[1:]]
        assert [r[0] for r in rows] == ["8", "32"] and all(float(r[3]) > 1 for r in rows)
        with pytest.raises(SystemExit) as e:  # the held-out split needs the training text
            lm_main(["eval", str(ckpt)])
        err = capsys.readouterr().err.strip().splitlines()
        assert e.value.code == 2 and len(err) == 1 and "--data-dir" in err[0] and "--file" in err[0]
    finally:
        hidden.rename(text)
    lm_main(["eval", str(ckpt), "--quiet", "--max-windows", "4"])
    assert len(capsys.readouterr().out.splitlines()) == 2


def test_an_older_checkpoint_without_its_tokenizer(trained, tmp_path, capsys):
    ckpt, text = trained
    old = torch.load(ckpt, weights_only=True)
    del old["xseq_tokenizer"]
    path = tmp_path / "old.ckpt"
    torch.save(old, path)
    with pytest.raises(SystemExit) as e:
        lm_main(["generate", str(path), "--prompt", "the ", "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and len(err) == 1 and "holds no tokenizer" in err[0] and "--data-dir" in err[0]
    lm_main(["generate", str(path), "--prompt", "the ", "--max-new-tokens", "4", "--greedy", "--quiet",
             "--data-dir", str(text.parent)])
    assert capsys.readouterr().out.startswith("the ")


def test_hostile_damaged_and_foreign_checkpoints_are_refused(trained, tmp_path, capsys):
    ckpt, _ = trained
    marker, hostile = tmp_path / "marker.txt", tmp_path / "hostile.ckpt"
    torch.save({"hyper_parameters": {"recipe": Payload(marker)}, "state_dict": {}}, hostile)
    with pytest.raises(ValueError, match=r"refused to load .*hostile\.ckpt.*could run code"):
        load_model(hostile)
    with pytest.raises(SystemExit) as e:
        lm_main(["generate", str(hostile), "--prompt", "the "])
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and len(err) == 1 and "refused to load" in err[0] and not marker.exists()

    data = ckpt.read_bytes()
    (tmp_path / "cut.ckpt").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"cut\.ckpt.* is not a readable checkpoint"):
        load_model(tmp_path / "cut.ckpt")
    torch.save({"format": "xseq.rl/2", "policy": {"w": torch.zeros(2)}}, tmp_path / "agent.pt")
    with pytest.raises(ValueError, match=r"agent\.pt.* is not an xseq.lm training checkpoint"):
        load_model(tmp_path / "agent.pt")
    other = torch.load(ckpt, weights_only=True)
    other["hyper_parameters"]["recipe"]["model"]["encoder"]["d_model"] = 64
    torch.save(other, tmp_path / "other.ckpt")
    with pytest.raises(ValueError, match=r"other\.ckpt.*weights do not fit the model its recipe describes"):
        load_model(tmp_path / "other.ckpt")


@pytest.mark.parametrize("args, message", [
    (["generate", "CKPT", "--prompt", "the", "--top-k", "0"], "argument --top-k: must be an integer >= 1, got 0"),
    (["generate", "CKPT", "--prompt", "the", "--temperature", "0"], "argument --temperature: must be a finite"),
    (["generate", "CKPT", "--prompt", "the", "--max-new-tokens", "-1"], "argument --max-new-tokens: must be an"),
    (["generate", "CKPT", "--prompt", "the", "--greedy", "--top-k", "3"], "--greedy takes no --temperature"),
    (["generate", "CKPT", "--prompt", ""], "--prompt must not be empty"),
    (["generate", "CKPT", "--prompt", "Zebra"], "--prompt: character 'Z' is not in"),
    (["generate", "CKPT", "--prompt", "the", "--top-k", "1000"], "--top-k must be at most the vocabulary size"),
    (["generate", "missing.ckpt", "--prompt", "the"], "argument checkpoint: no such file: missing.ckpt"),
    (["eval", "CKPT", "--contexts", "16,x"], "argument --contexts: must be comma-separated integers >= 1"),
    (["eval", "CKPT", "--batch-size", "0"], "argument --batch-size: must be an integer >= 1, got 0"),
    (["eval", "CKPT", "--file", "missing.txt"], "argument --file: no such file: missing.txt"),
    (["eval", "CKPT", "--data-dir", "missing"], "argument --data-dir: no such file or folder: missing"),
    (["train", "RECIPE", "--set", "train.nope=1"], "--set: override 'train.nope=1': no field 'nope'"),
    (["train", "RECIPE", "--set", "train.max_steps=0"], "TrainConfig.max_steps"),
    (["train", "RECIPE", "--resume", "nowhere.ckpt"], "--resume no checkpoint at nowhere.ckpt"),
    (["train", "RECIPE", "--quiet", "--verbose"], "not allowed with argument"),
])
def test_bad_options_are_one_line_errors(trained, tmp_path, corpus, capsys, monkeypatch, args, message):
    ckpt, _ = trained
    monkeypatch.chdir(tmp_path)
    recipe = tiny_recipe(tmp_path, corpus)
    args = [str(ckpt) if a == "CKPT" else str(recipe) if a == "RECIPE" else a for a in args]
    with pytest.raises(SystemExit) as e:
        lm_main(args)
    err = capsys.readouterr().err.strip().splitlines()  # argparse's own errors come after its usage lines
    assert e.value.code == 2 and message in err[-1] and err[-1].startswith("xseq lm"), err
    assert "Traceback" not in "\n".join(err)


def test_every_option_has_help():
    import argparse

    from xseq.lm.cli import build_parser
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert set(sub.choices) == {"params", "prepare", "train", "generate", "eval"}
    for name, parser in sub.choices.items():
        for action in parser._actions:
            assert action.help and action.help != argparse.SUPPRESS, f"{name} {action.option_strings or action.dest}"


def test_resume_refuses_another_model(trained, capsys):
    ckpt, _ = trained
    recipe = ckpt.parents[2] / "tiny.yaml"
    with pytest.raises(SystemExit) as e:
        lm_main(["train", str(recipe), "--resume", "last", "--set", "train.max_steps=20", "--set",
                 "model.encoder.d_model=64", "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and len(err) == 1 and "another model" in err[0] and "model.encoder.d_model" in err[0]


def test_a_gpt2_tokenizer_state_needs_no_files(tmp_path):
    import shutil

    from xseq.lm.tokenizers import GPT2Tokenizer, _byte_to_unicode, from_spec

    from .test_data import write_gpt2_files
    G = _byte_to_unicode()[ord(" ")]
    (tmp_path / "gpt2").mkdir()
    write_gpt2_files(tmp_path / "gpt2", [("h", "e"), ("l", "l"), ("he", "ll"), (G, "w"), ("hell", "o")])
    tok = GPT2Tokenizer(tmp_path / "gpt2")
    state = tok.state()
    shutil.rmtree(tmp_path / "gpt2")
    again = from_spec(state)
    assert again.encode("hello world, hello") == tok.encode("hello world, hello") and again.vocab_size == tok.vocab_size
