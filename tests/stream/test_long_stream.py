"""A long float32 stream stays within a stated bound of the float64 batch answer (the short version of
benchmarks/stream_drift.py, which runs 1,000,000 steps): the encoder within 1e-4 of the reference's std,
the classifier's probabilities within 1e-5."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import stream_drift  # noqa: E402

STEPS = 10_000


def test_encoder_stream_does_not_drift():
    rows = stream_drift.run_encoder(STEPS, chunk=2_500, d=16, layout="ms", seed=1).rows
    assert set(rows) == {0, 1, 2, 3}  # every decade up to 10,000 was measured
    assert max(r["dev"] for r in rows.values()) <= 1e-4


def test_classifier_stream_does_not_drift():
    rows = stream_drift.run_classifier(STEPS, chunk=2_500, d=16, seed=1).rows
    assert max(r["dev"] for r in rows.values()) <= 1e-5
