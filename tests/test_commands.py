"""Every shell command in README.md and docs/cli.md (the command-line guide it points to) runs as written,
through ./run.sh, on a small budget: the same command with budget flags appended (fewer epochs or steps, a
smaller model through --set), its outputs sent to a temporary folder, and placeholders (FILE.csv, ARGS, ...)
filled with something real. A command added to either file without a case here fails
`test_every_command_has_a_case`; a case whose command left the docs fails it too."""
from __future__ import annotations

import os
import re
import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [ROOT / "README.md", ROOT / "docs" / "cli.md"]
FENCE = re.compile(r"^```.*?^```[ \t]*$", flags=re.S | re.M)
BASH = re.compile(r"^```bash\n(.*?)^```[ \t]*$", flags=re.S | re.M)
INLINE = re.compile(r"`((?:\./run\.sh|xseq|\.venv/bin/xseq) [^`]+)`")


def shell_commands(path: Path) -> list[str]:
    """The commands of a Markdown file: lines of ```bash blocks that start with ./run.sh (continuations joined,
    comments dropped), and inline code that runs something (./run.sh ..., or xseq with an option or a path)."""
    text = path.read_text()
    found = []
    for block in BASH.findall(text):
        for line in re.sub(r"\\\n\s*", " ", block).splitlines():
            line = re.split(r"\s#", line, maxsplit=1)[0].strip()
            if line.startswith("./run.sh"):
                found.append(" ".join(line.split()))
    for span in INLINE.findall(FENCE.sub("", text)):
        if span.startswith(("./run.sh", ".venv/")) or re.search(r"\s(-|\S*/)", span):
            found.append(" ".join(span.split()))
    return found


DOCUMENTED = sorted({cmd for path in SOURCES for cmd in shell_commands(path)})

# budget flags: appended after the written command, so that they win (argparse and --set keep the last value)
TINY_LM = ("--quiet --set model.encoder.d_model=32 --set model.encoder.layout=ms --set train.max_steps=2 "
           "--set train.batch_size=2 --set train.context_length=16 --set train.val_interval=2 "
           "--set train.val_batches=2 --set train.warmup_steps=1")
LM_CKPT = "runs/lm/tinyshakespeare_char/checkpoints/last.ckpt"
HELP = r"usage: xseq"


@dataclass
class Case:
    """How a documented command runs here: `subs` fill its placeholders ({tmp}, {csv}, {data}, {lm}, {gpt2},
    {tirex} are filled in turn), `extra` is appended (budget flags, --out into {tmp}), `after` runs next (a
    resume, a summary)."""
    subs: dict = field(default_factory=dict)
    extra: str = ""
    after: str = ""
    outputs: list = field(default_factory=list)  # files it must write, relative to {tmp}
    stdout: str = ""  # a regular expression the output must match
    needs: str = ""  # "data" (the shared data folder), "nvcc", "lm" (the checkpoint of the lm train case),
    # "gpt2" (a GPT-2 tokenizer folder and texts), "tirex" (a random-weight TiRex checkpoint)

    def command(self, written: str) -> str:
        for old, new in self.subs.items():
            written = written.replace(old, new)
        return " ".join(part for part in (written, self.extra, self.after) if part)


ONE_TEST = Case(subs={"[ARGS]": ""}, extra="-q tests/test_readme.py::test_readme_is_short", stdout=r"\[100%\]")
CASES = {
    # README.md
    "./run.sh demo": Case(extra="--epochs 1 --quiet --out {tmp}/demo", stdout=r"MSE",
                          outputs=["demo/forecast.csv", "demo/backtest.csv", "demo/forecast.png"]),
    "./run.sh test": ONE_TEST,
    './run.sh test -m "not slow" -q': ONE_TEST,
    "./run.sh xseq forecast --data FILE.csv --target COL1 COL2 --horizon 96": Case(
        subs={"FILE.csv": "{csv}"}, extra="--epochs 1 --quiet --out {tmp}/f", stdout=r"xLSTM +MSE",
        outputs=["f/forecast.csv", "f/backtest.csv", "f/forecast.png"]),
    "./run.sh bench ops_cpu": Case(extra="--lengths 64 --repeats 1 --threads 1", stdout=r"64"),
    "./run.sh xseq ...": Case(subs={"...": "--help"}, stdout=HELP),
    "./run.sh cuda-check": Case(needs="ci"),  # .ci/run runs it as written: not a second time here (70 s)
    "./run.sh xseq classify --train GunPoint_TRAIN.ts --test GunPoint_TEST.ts": Case(
        extra="--epochs 1 --quiet --out {tmp}/c", stdout=r"accuracy", needs="data",
        outputs=["c/predictions.csv", "c/confusion_matrix.png"]),
    # docs/cli.md: ./run.sh and the shared conventions
    "./run.sh test [ARGS]": ONE_TEST,
    "./run.sh bench NAME [ARGS]": Case(subs={"NAME [ARGS]": "cli_startup --repeats 1"}, stdout=r"--help"),
    "./run.sh xseq ARGS": Case(subs={"ARGS": "forecast --help"}, stdout=r"--horizon"),
    ".venv/bin/xseq ARGS": Case(subs={"ARGS": "lm --help"}, stdout=r"generate"),
    "./run.sh bench cli_startup": Case(extra="--repeats 1", stdout=r"--help"),
    "xseq --help": Case(subs={"xseq": "./run.sh xseq"}, stdout=HELP),
    "xseq COMMAND --help": Case(subs={"xseq COMMAND": "./run.sh xseq synthetic"}, stdout=r"summary"),
    "./run.sh xseq demo": Case(extra="--epochs 1 --quiet --no-plot --out {tmp}/d", stdout=r"MSE",
                               outputs=["d/forecast.csv"]),
    # forecasting
    "./run.sh xseq forecast --data FILE.csv --horizon 24 --quantiles 0.1 0.9 --out runs/my_forecast": Case(
        subs={"FILE.csv": "{csv}", "runs/my_forecast": "{tmp}/q"}, extra="--epochs 1 --quiet", stdout=r"xLSTM +MSE",
        outputs=["q/forecast.csv", "q/forecast.png"]),
    "./run.sh xseq forecast --pretrained model.ckpt --data FILE.csv --horizon 48": Case(
        subs={"model.ckpt": "{tirex}", "FILE.csv": "{csv}"}, extra="--quiet --out {tmp}/t", stdout=r"TiRex",
        outputs=["t/forecast.csv"], needs="tirex"),
    # classification
    "./run.sh xseq classify --train GunPoint_TRAIN.ts --test GunPoint_TEST.ts --epochs 200 --d-model 64 --layout ms":
        Case(extra="--epochs 1 --quiet --out {tmp}/c2", stdout=r"accuracy", outputs=["c2/predictions.csv"],
             needs="data"),
    # recurrent RL: a run, then --resume to a larger total
    "xseq rl train recipes/rl/masked_cartpole.yaml [--steps N --seed S --log-dir D --resume]": Case(
        subs={"xseq": "./run.sh xseq", "[--steps N --seed S --log-dir D --resume]": "--steps 256 --seed 1 --log-dir "
              "{tmp}/rl --quiet"},
        after="&& ./run.sh xseq rl train recipes/rl/masked_cartpole.yaml --steps 512 --log-dir {tmp}/rl --resume "
              "--quiet",
        outputs=["rl/checkpoint.pt", "rl/progress.csv", "rl/learning_curve.png"], stdout=r"512"),
    "./run.sh xseq rl train ...": Case(subs={"...": "--help"}, stdout=r"--resume"),
    # language models: train writes the checkpoint that generate and eval read
    "./run.sh xseq lm params recipes/lm/xlstm_7_1_1.3b.yaml": Case(stdout=r"1,420,065,104"),
    "./run.sh xseq lm train recipes/lm/tinyshakespeare_char.yaml --data-dir ../shared/data": Case(
        subs={"../shared/data": "{data}"}, extra=TINY_LM + " --set train.out_dir={tmp}/lm",
        outputs=["lm/checkpoints/last.ckpt"], needs="data"),
    f'./run.sh xseq lm generate {LM_CKPT} --prompt "ROMEO:" --top-k 10': Case(
        subs={LM_CKPT: "{lm}"}, extra="--max-new-tokens 8 --quiet", stdout=r"^ROMEO:", needs="lm"),
    f"./run.sh xseq lm eval {LM_CKPT} --contexts 64,256,1024 --data-dir ../shared/data": Case(
        subs={LM_CKPT: "{lm}", "../shared/data": "{data}"}, extra="--max-windows 2 --quiet", stdout=r"1024",
        needs="lm"),
    "./run.sh xseq lm train recipes/lm/xlstm_7_1_1.3b.yaml --set data.path=/data/train.txt "
    "--set data.val_path=/data/val.txt --set data.tokenizer_dir=/data/gpt2": Case(
        # the paper's recipe on a CPU: a tiny model, one CPU device, 32-bit, no FSDP, on a GPT-2 folder and texts
        # written for the test
        subs={"/data/gpt2": "{gpt2}", "/data/": "{gpt2}/"},
        extra=TINY_LM.replace("layout=ms", "num_blocks=2 --set model.encoder.slstm_at=[1]")
        + " --set train.micro_batch_size=2 --set train.accelerator=cpu --set train.devices=1 "
        "--set train.strategy=auto --set train.precision=32-true --set train.out_dir={tmp}/big",
        outputs=["big/checkpoints/last.ckpt"], needs="gpt2"),
    # synthetic tasks: summary reads what train wrote
    "./run.sh xseq synthetic train recipes/synthetic/parity.yaml --models xlstm_0_1,xlstm_1_0": Case(
        extra="--steps 2 --eval-samples 8 --quiet --out {tmp}/syn",
        outputs=["syn/parity/xlstm_0_1.json", "syn/parity/xlstm_1_0.json"]),
    "./run.sh xseq synthetic train recipes/synthetic/mqar_256_16.yaml --steps 2000 --lr 1e-3 --seed 1": Case(
        extra="--steps 2 --models xlstm_1_0 --eval-samples 8 --quiet --out {tmp}/syn"),
    "./run.sh xseq synthetic summary": Case(
        subs={"./run.sh xseq synthetic summary": "./run.sh xseq synthetic train recipes/synthetic/parity.yaml "
              "--models xlstm_1_0 --steps 2 --eval-samples 8 --quiet --out {tmp}/sum "
              "&& ./run.sh xseq synthetic summary"},
        extra="--out {tmp}/sum", stdout=r"xlstm_1_0"),
}


def test_every_command_has_a_case():
    missing = [c for c in DOCUMENTED if c not in CASES]
    stale = [c for c in CASES if c not in DOCUMENTED]
    assert not missing, f"commands in the docs without a case in tests/test_commands.py: {missing}"
    assert not stale, f"cases for commands no longer in the docs: {stale}"
    assert len(DOCUMENTED) >= 25


def test_shell_commands_reads_blocks_continuations_comments_and_inline_code(tmp_path):
    md = tmp_path / "x.md"
    md.write_text("Run `./run.sh a --b` or `xseq c`, or `xseq d --e`.\n\n```bash\n./run.sh f \\\n    --g 1   # note\n"
                  "echo no\n```\n\n```\n./run.sh not-bash\n```\n")
    assert shell_commands(md) == ["./run.sh f --g 1", "./run.sh a --b", "xseq d --e"]


@pytest.fixture(scope="module")
def places(tmp_path_factory, data_dir):
    """The real things the placeholders stand for, made once."""
    tmp = tmp_path_factory.mktemp("commands")
    t = pd.date_range("2024-01-01", periods=1400, freq="h")
    rng = np.random.default_rng(0)
    k = np.arange(len(t))
    frame = pd.DataFrame({"date": t, "COL1": np.sin(2 * np.pi * k / 24) + 0.1 * rng.standard_normal(len(t)),
                          "COL2": np.cos(2 * np.pi * k / 24) + 0.01 * k / 24})
    csv = tmp / "FILE.csv"
    frame.to_csv(csv, index=False)
    return {"tmp": tmp, "csv": csv, "data": data_dir}


def _gpt2_folder(tmp: Path) -> Path:
    from tests.lm.test_data import write_gpt2_files

    folder = tmp / "gpt2"
    folder.mkdir(exist_ok=True)
    write_gpt2_files(folder, [("t", "h"), ("th", "e"), ("o", "x")])
    text = "the quick brown fox jumps over the lazy dog. " * 200
    (folder / "train.txt").write_text(text)
    (folder / "val.txt").write_text(text[:2000])
    return folder


def _tirex(tmp: Path) -> Path:
    pytest.importorskip("tirex.models.tirex", reason="tirex-ts (the test extra) is not installed")
    from tests.forecast.test_tirex import SMALL, write_random_checkpoint

    return write_random_checkpoint(SMALL[0], tmp / "model.ckpt", seed=0)


def _quoted(fill: dict) -> dict:
    return {k: shlex.quote(str(v)) for k, v in fill.items()}


_DONE: dict[str, subprocess.CompletedProcess] = {}  # two documented forms of one command run it once


def _run(command: str, data_dir: Path) -> subprocess.CompletedProcess:
    """The command in bash at the repository root, as a user types it; data names resolve under the shared data
    folder, as the README asks a user to set it up."""
    key = " ".join(command.split())
    if key not in _DONE:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "XSEQ_DATA_DIR": str(data_dir)}
        env.pop("PYTEST_CURRENT_TEST", None)
        _DONE[key] = subprocess.run(["bash", "-c", command], cwd=ROOT, env=env, capture_output=True, text=True,
                                    timeout=600)
    return _DONE[key]


@pytest.mark.slow
@pytest.mark.parametrize("written", list(CASES), ids=lambda c: c[:70])
def test_documented_command_runs(written, places):
    case = CASES[written]
    tmp, fill = places["tmp"], dict(places)
    if case.needs == "ci":  # a command CI runs itself, before the tests: check that it still does, as written
        steps = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
        assert written in steps, f".ci/run no longer runs {written!r}"
        return
    if case.needs == "lm":
        fill["lm"] = tmp / "lm" / "checkpoints" / "last.ckpt"
        if not fill["lm"].exists():  # the lm train case did not run first (a selected test): run it now
            train = [w for w in CASES if w.startswith("./run.sh xseq lm train recipes/lm/tinyshakespeare")][0]
            done = _run(CASES[train].command(train).format(**_quoted(fill)), places["data"])
            assert done.returncode == 0, done.stderr[-3000:]
    if case.needs == "gpt2":
        fill["gpt2"] = _gpt2_folder(tmp)
    if case.needs == "tirex":
        fill["tirex"] = _tirex(tmp)
    command = case.command(written).format(**_quoted(fill))
    done = _run(command, places["data"])
    assert done.returncode == 0, f"{command}\nexit {done.returncode}\n{done.stderr[-3000:]}"
    for name in case.outputs:
        assert (tmp / name).is_file(), f"{command} did not write {name}"
    if case.stdout:
        assert re.search(case.stdout, done.stdout, flags=re.M), f"{command}: stdout\n{done.stdout[-2000:]}"


def test_cases_run_the_written_command():
    """A case's command starts with the written command (placeholders filled): budget flags come after it."""
    for written, case in CASES.items():
        filled = written
        for old, new in case.subs.items():
            filled = filled.replace(old, new)
        assert case.command(written).startswith(filled)
        assert not re.search(r"\b(FILE\.csv|ARGS|NAME|COMMAND|model\.ckpt)\b|\.\.\.|\[", filled), filled
