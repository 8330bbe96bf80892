"""Classifier streams: probabilities after observation t equal predict_proba on the prefix [0, t]."""
import pickle

import numpy as np
import pytest
import torch

from tests.stream._resume import resume_in_fresh_process
from xseq import XLSTMClassifier
from xseq.datasets import load_ett

T = 2000


@pytest.fixture(scope="module")
def ett(data_dir):
    return load_ett(data_dir=data_dir).iloc[:T]


@pytest.fixture(scope="module")
def clf(ett):
    """Trained briefly to tell weekend days from weekdays from a day of the 7 ETTh1 channels."""
    v = ett.to_numpy().astype(np.float32)
    days = np.arange(0, T - 24, 24)
    X = np.stack([v[d:d + 24] for d in days])
    y = np.where(ett.index[days].day_of_week >= 5, "weekend", "weekday")
    return XLSTMClassifier(d_model=16, layout="msms", num_heads=2, max_epochs=3, progress_bar=False,
                           threads=1).fit(X, y)


def test_stream_equals_predict_proba_on_prefixes(clf, ett):
    v = ett.to_numpy().astype(np.float32)
    stream = clf.stream(batch_size=1)
    outs = np.stack([stream.update(v[t:t + 1])[0].numpy().copy() for t in range(T)])
    ts = [0, 1, 2, 5, 23, 64, 65, 300, 777, 1024, 1500, T - 1]
    ref = clf.predict_proba([v[:t + 1] for t in ts])
    np.testing.assert_allclose(outs[ts], ref, atol=1e-5, rtol=0)
    assert np.allclose(outs.sum(1), 1, atol=1e-5)


def test_stream_rows_and_bad_input(clf, ett):
    v = ett.to_numpy().astype(np.float32)
    stream = clf.stream(batch_size=2)
    for t in range(100):
        x = np.stack([v[t], v[t - 30] if t >= 30 else np.full(7, np.nan, dtype=np.float32)])
        out = stream.update(x, active=torch.tensor([True, t >= 30]))
    np.testing.assert_allclose(out.numpy(), clf.predict_proba([v[:100], v[:70]]), atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match=r"\(2, 7\)"):
        stream.update(np.zeros((2, 6)))
    with pytest.raises(ValueError, match="NaN"):
        stream.update(np.full((2, 7), np.nan))
    other = XLSTMClassifier(d_model=16, layout="msms", num_heads=2, max_epochs=1, progress_bar=False, threads=1,
                            seed=4).fit(np.stack([v[:24], v[24:48]]), ["a", "b"])
    with pytest.raises(ValueError, match="written by another model"):
        other.stream().load_state_dict(stream.state_dict())


def test_classifier_stream_checkpoint_in_fresh_process(clf, ett, tmp_path):
    v = ett.to_numpy().astype(np.float32)[:300]
    (tmp_path / "clf.pkl").write_bytes(pickle.dumps(clf))
    stream = clf.stream()
    for t in range(150):
        stream.update(v[t:t + 1])
    checkpoint = stream.state_dict()
    expected = torch.stack([stream.update(v[t:t + 1]) for t in range(150, 300)])
    resumed = resume_in_fresh_process(tmp_path, checkpoint, f"""
        import pickle
        model = pickle.loads(open({str(tmp_path / 'clf.pkl')!r}, 'rb').read())
        """, v, "x[t:t + 1]", range(150, 300))
    assert torch.equal(resumed, expected)
