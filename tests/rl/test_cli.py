"""`xseq rl train`: logs, checkpoint, learning curve, and --resume continuing the same schedule."""
import csv

import yaml

from xseq.cli import main


def test_train_then_resume(tmp_path):
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(yaml.safe_dump({"ppo": {
        "env": "xseq/CueRecall-v0", "env_kwargs": {"delay": 3}, "num_envs": 2, "rollout_steps": 16,
        "minibatch_size": 16, "epochs": 1, "eval_interval": 32, "eval_episodes": 4, "total_steps": 64,
        "encoder": "xlstm", "xlstm": {"d_model": 16, "layout": "m", "mlstm": {"num_heads": 2}}}}))
    out = tmp_path / "run"
    assert main(["rl", "train", str(recipe), "--log-dir", str(out), "--no-progress", "--steps", "64"]) == 0
    rows = list(csv.DictReader(open(out / "progress.csv")))
    assert [int(r["step"]) for r in rows] == [32, 64]
    assert all(r["eval_return"] for r in rows) and all(int(r["threads"]) == 1 for r in rows)
    assert (out / "checkpoint.pt").exists() and (out / "learning_curve.png").stat().st_size > 10_000
    # a finished schedule has nothing left to do: --resume runs no rollout and appends nothing
    assert main(["rl", "train", str(recipe), "--log-dir", str(out), "--no-progress", "--resume"]) == 0
    assert len(list(csv.DictReader(open(out / "progress.csv")))) == 2
