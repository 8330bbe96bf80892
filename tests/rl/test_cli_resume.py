"""`xseq rl train --resume --steps N`: N is the run's new total; a run already there trains nothing and says so.
Options are checked with one-line errors; --quiet prints the result only."""
import csv

import pytest
import yaml

from xseq.cli import main


def tiny_recipe(tmp_path):
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(yaml.safe_dump({"ppo": {
        "env": "xseq/CueRecall-v0", "env_kwargs": {"delay": 3}, "num_envs": 2, "rollout_steps": 16,
        "minibatch_size": 16, "epochs": 1, "eval_interval": 32, "eval_episodes": 4, "total_steps": 64,
        "encoder": "xlstm", "xlstm": {"d_model": 16, "layout": "m", "mlstm": {"num_heads": 2}}}}))
    return recipe


def steps(out):
    with open(out / "progress.csv") as f:
        return [int(r["step"]) for r in csv.DictReader(f)]


def test_resume_continues_to_the_new_total(tmp_path, capsys):
    recipe, out = tiny_recipe(tmp_path), tmp_path / "run"
    assert main(["rl", "train", str(recipe), "--log-dir", str(out), "--quiet", "--steps", "64"]) == 0
    assert steps(out) == [32, 64]
    first = capsys.readouterr().out.splitlines()
    assert len(first) == 1 and first[0].startswith("final deterministic return") and "after 64 env steps" in first[0]

    assert main(["rl", "train", str(recipe), "--log-dir", str(out), "--no-progress", "--resume", "--steps", "128"]) == 0
    assert steps(out) == [32, 64, 96, 128]
    assert "from 64 to 128 env steps" in capsys.readouterr().out

    mtime = (out / "checkpoint.pt").stat().st_mtime_ns
    for extra in (["--steps", "128"], ["--steps", "100"], []):
        assert main(["rl", "train", str(recipe), "--log-dir", str(out), "--resume", *extra]) == 0
        printed = capsys.readouterr().out.splitlines()
        assert len(printed) == 1 and printed[0].startswith("xseq rl: nothing to do")
        assert "at 128 env steps" in printed[0]
    assert steps(out) == [32, 64, 96, 128] and (out / "checkpoint.pt").stat().st_mtime_ns == mtime


def test_resume_drops_rows_logged_after_the_checkpoint(tmp_path, capsys):
    recipe, out = tiny_recipe(tmp_path), tmp_path / "run"
    assert main(["rl", "train", str(recipe), "--log-dir", str(out), "--quiet", "--steps", "64"]) == 0
    with open(out / "progress.csv", "a") as f:  # a crash after the checkpoint at 64 had logged step 96
        f.write("96" + "," * 14 + "\n")
    assert main(["rl", "train", str(recipe), "--log-dir", str(out), "--quiet", "--resume", "--steps", "96"]) == 0
    assert steps(out) == [32, 64, 96]


@pytest.mark.parametrize("args, message", [
    (["--steps", "0"], "argument --steps: must be an integer >= 1, got 0"),
    (["--steps", "many"], "argument --steps: must be an integer, got 'many'"),
    (["--seed", "-1"], "argument --seed: must be an integer >= 0, got -1"),
    (["--resume"], "--resume finds no checkpoint at"),
    (["--quiet", "--verbose"], "not allowed with argument"),
])
def test_bad_options_are_one_line_errors(tmp_path, capsys, args, message):
    recipe = tiny_recipe(tmp_path)
    with pytest.raises(SystemExit) as e:
        main(["rl", "train", str(recipe), "--log-dir", str(tmp_path / "run"), *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and message in err[-1] and "Traceback" not in "\n".join(err)


def test_bad_recipes_are_one_line_errors(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"ppo": {"env": "xseq/CueRecall-v0", "num_envs": 0}}))
    for recipe, message in ((tmp_path / "missing.yaml", "no such file"), (bad, "num_envs must be a positive int")):
        with pytest.raises(SystemExit) as e:
            main(["rl", "train", str(recipe)])
        err = capsys.readouterr().err.strip().splitlines()  # argparse's own errors come after its usage lines
        assert e.value.code == 2 and message in err[-1] and err[-1].startswith("xseq rl")
        assert "Traceback" not in "\n".join(err)


def test_every_option_has_help():
    import argparse

    from xseq.rl.cli import build_parser
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    for name, parser in sub.choices.items():
        for action in parser._actions:
            assert action.help and action.help != argparse.SUPPRESS, f"{name} {action.option_strings or action.dest}"
