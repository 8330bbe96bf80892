"""The `xseq` command line as a user meets it: --help for every command (exit 0, every option described), and
bad input to forecast, classify and synthetic answered with exit status 2 and ONE stderr line that names the
flag and the problem, never a traceback (unless --debug).

The entry point itself runs as `python -m xseq.cli` in fresh processes. The many bad-input and --help cases run
each in its own process too, forked from one driver process that has imported the package once (a fresh
interpreter per case would cost the package import, seconds, every time): each case gets its own stderr, stdout
and exit status, exactly what `python -m xseq.cli ARGS` does (sys.exit(main(ARGS))). Everything runs on tiny
files written into tmp_path; no shared data is needed."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "synthetic" / "parity.yaml"
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}


def xseq(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "xseq.cli", *args], capture_output=True, text=True, cwd=cwd,
                          env=ENV, timeout=300)


# ----------------------------------------------------------------- one process per case, forked from a driver
DRIVER = textwrap.dedent(r"""
    import json, os, signal, sys, traceback
    import xseq.cli
    import xseq.classify.cli, xseq.forecast.cli, xseq.synthetic.cli  # what the commands import, imported once
    import xseq.classify.estimator, xseq.datasets, xseq.forecast.frames, xseq.synthetic.training  # noqa
    print("ready", flush=True)
    for line in sys.stdin:
        case = json.loads(line)
        pid = os.fork()
        if pid == 0:  # the child is `python -m xseq.cli ARGS`: sys.exit(main(ARGS))
            signal.alarm(120)
            for fd, name in ((1, "out"), (2, "err")):
                os.dup2(os.open(case[name], os.O_WRONLY | os.O_CREAT | os.O_TRUNC), fd)
            os.chdir(case["cwd"])
            sys.argv = ["xseq", *case["argv"]]
            try:
                code = xseq.cli.main(case["argv"])
            except SystemExit as e:
                code = e.code
            except BaseException:
                traceback.print_exc()
                code = 1
            if isinstance(code, str):
                print(code, file=sys.stderr)
                code = 1
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code or 0)
        _, status = os.waitpid(pid, 0)
        print(json.dumps(os.waitstatus_to_exitcode(status)), flush=True)
""")


class Forked:
    def __init__(self, tmp: Path):
        self.tmp, self.n = tmp, 0
        self.proc = subprocess.Popen([sys.executable, "-c", DRIVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, env=ENV, cwd=tmp)
        assert self.proc.stdout.readline().strip() == "ready", "the driver did not start"

    def __call__(self, *argv: str, cwd=None) -> subprocess.CompletedProcess:
        self.n += 1
        out, err = self.tmp / f"{self.n}.out", self.tmp / f"{self.n}.err"
        case = {"argv": list(argv), "out": str(out), "err": str(err), "cwd": str(cwd or self.tmp)}
        self.proc.stdin.write(json.dumps(case) + "\n")
        self.proc.stdin.flush()
        rc = json.loads(self.proc.stdout.readline())
        return subprocess.CompletedProcess(["xseq", *argv], rc, out.read_text(), err.read_text())

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    if not hasattr(os, "fork"):
        pytest.skip("needs os.fork")
    forked = Forked(tmp_path_factory.mktemp("driver"))
    yield forked
    forked.close()


# ----------------------------------------------------------------- tiny inputs
@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("inputs")
    t = np.arange(200)
    ok = pd.DataFrame({"date": pd.date_range("2024-01-01", periods=200, freq="h"),
                       "load": 50 + 10 * np.sin(2 * np.pi * t / 24), "temp": 5 + np.cos(t / 10)})
    paths = {name: d / name for name in ("ok.csv", "nan.csv", "text.csv", "timecol.csv", "train.ts", "test6.ts",
                                         "oneclass.ts", "nolabels.ts", "badkey.yaml", "badyaml.yaml")}
    ok.to_csv(paths["ok.csv"], index=False)
    nan = ok.copy()
    nan.loc[17, "load"] = np.nan
    nan.to_csv(paths["nan.csv"], index=False)
    text = ok.astype({"load": object})
    text.loc[5, "load"] = "high"
    text.to_csv(paths["text.csv"], index=False)
    ok.rename(columns={"date": "time"}).to_csv(paths["timecol.csv"], index=False)
    dup = ok.copy()
    dup.loc[4, "date"] = dup.loc[3, "date"]
    paths["dup.csv"] = d / "dup.csv"
    dup.to_csv(paths["dup.csv"], index=False)
    rng = np.random.default_rng(0)

    def ts(path, cases, labels=True, channels=1):
        head = f"@problemName tiny\n@univariate {'true' if channels == 1 else 'false'}\n@dimensions {channels}\n"
        head += "@classLabel true a b\n@data\n" if labels else "@classLabel false\n@data\n"
        rows = [":".join(",".join(f"{v:.3f}" for v in rng.standard_normal(8)) for _ in range(channels))
                + (f":{label}" if labels else "") for label in cases]
        path.write_text(head + "\n".join(rows) + "\n")

    ts(paths["train.ts"], ["a", "b"] * 4)
    ts(paths["test6.ts"], ["a", "b"] * 2, channels=6)
    ts(paths["oneclass.ts"], ["a"] * 4)
    ts(paths["nolabels.ts"], [None] * 4, labels=False)
    paths["badkey.yaml"].write_text(RECIPE.read_text().replace("steps: 5000", "stepz: 5000"))
    paths["badyaml.yaml"].write_text("task: {kind: formal\nmodels: [\n")
    (d / "empty_runs").mkdir()
    paths["empty_runs"] = d / "empty_runs"
    return paths


# ----------------------------------------------------------------- --help
def undocumented(help_text: str) -> list[str]:
    """Options (and positionals) in argparse's help output that have no description."""
    lines, missing, in_args = help_text.splitlines(), [], False
    for i, line in enumerate(lines):
        if line in ("options:", "optional arguments:", "positional arguments:"):
            in_args = True
            continue
        if not in_args or not line.strip() or re.match(r"^\S.*:$", line):
            continue
        m = re.match(r"^  (\S.*?)(?:\s{2,}(\S.*))?$", line)
        if m and not line.startswith("   ") and m.group(2) is None:
            following = lines[i + 1] if i + 1 < len(lines) else ""
            if not re.match(r"^\s{4,}\S", following):
                missing.append(m.group(1))
    return missing


def test_the_help_checker_sees_a_missing_description():
    text = "usage: x\n\noptions:\n  -h, --help  show\n  --a A\n  --b B       the b\n  --long-one LONG\n" \
           "                        described below\n"
    assert undocumented(text) == ["--a A"]


def test_xseq_help_lists_every_command(run):
    r = xseq("--help")
    assert r.returncode == 0 and r.stderr == ""
    listed = dict(re.findall(r"^  ([a-z]+)\s{2,}(\S.*)$", r.stdout.split("commands:")[1].split("\n\n")[0], re.M))
    assert set(listed) == {"demo", "forecast", "classify", "rl", "lm", "synthetic"}
    assert all(len(text) > 20 for text in listed.values())
    alone = run()  # no command: the same list, on stderr, exit status 2
    assert alone.returncode == 2 and alone.stdout == "" and "forecast" in alone.stderr and "classify" in alone.stderr


@pytest.mark.parametrize("argv", [["demo"], ["forecast"], ["classify"], ["synthetic"], ["synthetic", "train"],
                                  ["synthetic", "summary"]], ids=" ".join)
def test_command_help_describes_every_option(run, argv):
    r = run(*argv, "--help")
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert r.stdout.startswith(f"usage: xseq {' '.join(argv)}")
    assert undocumented(r.stdout) == []
    if argv[0] in ("forecast", "demo"):
        for flag in ("--time-col", "--epochs", "--threads", "--seed", "--out", "--horizon", "--fill", "--debug"):
            assert flag in r.stdout
    if argv == ["classify"]:
        for flag in ("--epochs", "--d-model", "--layout", "--out"):
            assert flag in r.stdout


# ----------------------------------------------------------------- bad input: exit 2, one line, no traceback
BAD = [  # (argv with {file} placeholders, what the line must contain)
    (["forecast", "--horizon", "0"], ["--horizon", ">= 1", "got 0"]),
    (["forecast", "--horizon", "-3"], ["--horizon", ">= 1", "got -3"]),
    (["forecast", "--horizon", "abc"], ["--horizon", "integer", "'abc'"]),
    (["forecast", "--lookback", "0"], ["--lookback", ">= 1"]),
    (["forecast", "--season", "0"], ["--season", ">= 1"]),
    (["forecast", "--test", "0"], ["--test", ">= 1"]),
    (["forecast", "--data", "{ok.csv}", "--horizon", "2000"], ["--horizon 2000 is too large", "200 steps", "fit"]),
    (["forecast", "--data", "{ok.csv}", "--horizon", "24", "--test", "10"], ["--test", "--horizon (24)", "10"]),
    (["forecast", "--data", "missing.csv"], ["--data", "no such file", "missing.csv"]),
    (["forecast", "--data", "{ok.csv}", "--target", "nope"], ["--target", "'nope'", "load"]),
    (["forecast", "--data", "{nan.csv}"], ["--data", "'load'", "missing value", "--fill ffill"]),
    (["forecast", "--data", "{text.csv}"], ["--data", "'load'", "not a number", "'high'"]),
    (["forecast", "--data", "{timecol.csv}"], ["--time-col", "'date'", "'time'"]),
    (["forecast", "--data", "{dup.csv}"], ["--data", "duplicated timestamps", "2024-01-01 03:00:00"]),
    (["forecast", "--fill", "bogus"], ["--fill", "'bogus'"]),
    (["forecast", "--quantiles", "1.5"], ["--quantiles", "(0, 1)"]),
    (["forecast", "--finetune", "2"], ["--finetune", "--pretrained"]),
    (["forecast", "--out", "{ok.csv}"], ["--out", "folder"]),
    (["classify", "--train", "{train.ts}"], ["--test", "required"]),
    (["classify", "--train", "missing.ts", "--test", "{train.ts}"], ["--train", "no such file"]),
    (["classify", "--train", "{train.ts}", "--test", "{train.ts}", "--layout", "mx"], ["--layout", "'mx'", "m", "s"]),
    (["classify", "--train", "{train.ts}", "--test", "{train.ts}", "--d-model", "30"], ["--d-model", "30", "28 or 32"]),
    (["classify", "--train", "{train.ts}", "--test", "{train.ts}", "--epochs", "0"], ["--epochs", ">= 1"]),
    (["classify", "--train", "{train.ts}", "--test", "{train.ts}", "--val-size", "1"], ["--val-size", "[0, 1)"]),
    (["classify", "--train", "{train.ts}", "--test", "{test6.ts}"], ["--test", "6 channel", "has 1"]),
    (["classify", "--train", "{oneclass.ts}", "--test", "{train.ts}"], ["--train", "one class"]),
    (["classify", "--train", "{train.ts}", "--test", "{nolabels.ts}"], ["--test", "no class labels"]),
    (["classify", "--train", "{ok.csv}", "--test", "{train.ts}"], ["--train", "ok.csv", "header"]),
    (["synthetic", "train", "{badkey.yaml}"], ["badkey.yaml", "'stepz'", "train"]),
    (["synthetic", "train", "{badyaml.yaml}"], ["badyaml.yaml", "YAML", "line 2"]),
    (["synthetic", "train", "missing.yaml"], ["RECIPE", "no such file"]),
    (["synthetic", "train", str(RECIPE), "--models", "gru"], ["--models", "'gru'", "not in the recipe"]),
    (["synthetic", "train", str(RECIPE), "--steps", "0"], ["--steps", ">= 1"]),
    (["synthetic", "train", str(RECIPE), "--eval-samples", "-3"], ["--eval-samples", ">= 1"]),
    (["classify", "--train", "Nowhere_TRAIN.ts", "--test", "{train.ts}"], ["--train", "no such file", "ucr"]),
    (["synthetic", "train", str(RECIPE), "--lr", "1e-7"], ["--lr", "min_lr"]),
    (["synthetic", "train", str(RECIPE), "--lr", "fast"], ["--lr", "number", "'fast'"]),
    (["synthetic", "summary", "--out", "{empty_runs}"], ["--out", "no results"]),
    (["synthetic", "bogus"], ["'bogus'", "train", "summary"]),
]


@pytest.mark.parametrize("argv, expected", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_input_is_one_line_naming_the_flag(run, files, argv, expected):
    argv = [str(files[a[1:-1]]) if a.startswith("{") else a for a in argv]
    r = run(*argv)
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    assert "Traceback" not in r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    assert re.match(rf"xseq {argv[0]}( {re.escape(argv[1])})?: error: \S", lines[0]), lines[0]
    for text in expected:
        assert text in lines[0], (text, lines[0])
    assert not (run.tmp / "outputs").exists() and not (run.tmp / "runs").exists()  # nothing written


def test_the_entry_point_itself_gives_one_line(tmp_path):
    r = xseq("forecast", "--horizon", "0", cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr == "xseq forecast: error: argument --horizon: must be an integer >= 1, got 0\n"


def test_an_unknown_command_is_one_line(run):
    r = run("forcast", "--horizon", "3")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "'forcast'" in r.stderr and "forecast" in r.stderr


def test_debug_shows_the_traceback(files, tmp_path):
    r = xseq("forecast", "--data", str(files["nan.csv"]), "--debug", cwd=tmp_path)
    assert r.returncode != 0 and "Traceback (most recent call last)" in r.stderr and "missing value" in r.stderr


def test_a_good_forecast_run_fills_the_out_folder(run, files, tmp_path):
    out = tmp_path / "fc"
    r = run("forecast", "--data", str(files["ok.csv"]), "--horizon", "6", "--epochs", "1", "--quiet",
            "--quantiles", "0.1", "0.9", "--out", str(out))
    assert r.returncode == 0, r.stderr[-3000:]
    assert sorted(p.name for p in out.iterdir()) == ["backtest.csv", "forecast.csv", "forecast.png"]
    forecast = pd.read_csv(out / "forecast.csv")
    assert list(forecast.columns[:3]) == ["date", "load", "temp"] and len(forecast) == 6  # the index is named
    assert {"load_q0.1", "load_q0.9"} <= set(forecast.columns)
    assert "xLSTM" in r.stdout and "seasonal naive" in r.stdout


def test_synthetic_summary_prints_small_step_counts_plainly():
    from xseq.synthetic.cli import steps_label

    assert [steps_label(n) for n in (30, 999, 1000, 5000, 12500)] == ["30", "999", "1k", "5k", "12.5k"]
