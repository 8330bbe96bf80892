"""Run a command in a subprocess and SIGKILL it at a random point after its k-th checkpoint write.

Checkpoint writes are seen by polling files (xseq writes checkpoints by renaming a finished temporary file
into place, so every write is a new (inode, mtime) of the path)."""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def cli(*args) -> list[str]:
    return [sys.executable, "-m", "xseq.cli", *map(str, args)]


class Writes:
    """Counts the distinct versions of the files that `paths()` lists, and when each was first seen."""

    def __init__(self, paths):
        self.paths, self.seen, self.times = paths, set(), []

    def poll(self) -> int:
        for p in self.paths():
            try:
                st = p.stat()
            except FileNotFoundError:
                continue
            key = (str(p), st.st_ino, st.st_mtime_ns, st.st_size)
            if key not in self.seen:
                self.seen.add(key)
                self.times.append(time.monotonic())
        return len(self.times)


def run(cmd, log: Path, timeout: float = 240) -> str:
    """Run cmd to its end (output to `log`); its output, and an AssertionError with it if it failed."""
    with open(log, "w") as f:
        rc = subprocess.run(cmd, cwd=ROOT, env=ENV, stdout=f, stderr=subprocess.STDOUT, timeout=timeout).returncode
    text = log.read_text()
    assert rc == 0, f"{' '.join(cmd)} failed ({rc}):\n{text[-3000:]}"
    return text


def kill_at_random(cmd, writes: Writes, total: int, rng: random.Random, log: Path, timeout: float = 240,
                   after: int = 0) -> dict:
    """Start cmd, which writes `total` checkpoints in all (counting those of earlier, killed runs: `writes` goes on
    counting, and `after` of them were seen); after write k (drawn from rng among after + 1 .. total - 2) wait a
    random part u of the time the previous write took (so the kill lands anywhere in the next epoch or step, a
    checkpoint's own writing included), then SIGKILL it. Returns {"k", "u", "seen"} (seen: the writes seen when
    it was dead); an AssertionError if the run ended before it was killed."""
    k, u = rng.randint(after + 1, max(after + 1, total - 2)), rng.random()
    deadline = time.monotonic() + timeout
    with open(log, "w") as f:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=ENV, stdout=f, stderr=subprocess.STDOUT)
        try:
            while writes.poll() < k:
                assert proc.poll() is None, f"the run ended (rc {proc.returncode}) before checkpoint {k} of " \
                                            f"{total}:\n{log.read_text()[-3000:]}"
                assert time.monotonic() < deadline, f"no checkpoint {k} after {timeout} s"
                time.sleep(0.002)
            t = writes.times
            gap = t[k - 1] - t[k - 2] if k >= max(2, after + 2) else 0.05
            time.sleep(u * gap)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == -signal.SIGKILL, f"the run ended (rc {proc.returncode}) before it was killed " \
                                               f"(after checkpoint {k} of {total}):\n{log.read_text()[-3000:]}"
    return {"k": k, "u": u, "seen": writes.poll()}
