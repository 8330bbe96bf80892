"""Forecaster streams: the forecast after observation t equals predict(y=history up to t)."""
import numpy as np
import pytest
import torch

from tests.stream._resume import resume_in_fresh_process
from xseq import XLSTMForecaster
from xseq.datasets import load_ett

T = 2000
L, H = 48, 12


@pytest.fixture(scope="module")
def ett(data_dir):
    return load_ett(data_dir=data_dir).iloc[:T]


@pytest.fixture(scope="module")
def fitted(ett):
    f = XLSTMForecaster(H, L, patch_len=8, d_model=16, layout="ms", max_epochs=1, batch_size=128,
                        max_train_windows=2000, cross_series=8, quantiles=[0.1, 0.9], quantile_epochs=1,
                        progress_bar=False, threads=1, seed=0)
    return f.fit(ett.iloc[:1200])


def test_stream_equals_predict_on_every_prefix(fitted, ett):
    values = ett.to_numpy()
    stream = fitted.stream(batch_size=1)
    outs = []
    for t in range(T):
        outs.append(stream.update(values[t:t + 1]).clone())
    outs = torch.stack(outs)[:, 0].double().numpy()          # (T, S, H, 1 + Q)
    assert np.isnan(outs[:L - 1]).all() and np.isfinite(outs[L - 1:]).all()
    for t in [L - 1, L, 100, 777, 1199, 1500, T - 1]:
        fc = fitted.predict(y=ett.iloc[:t + 1])               # columns: (point, q0.1, q0.5, q0.9) x series
        ref = fc.to_numpy().reshape(H, 4, 7).transpose(2, 0, 1)
        err = np.abs(outs[t] - ref).max() / np.abs(ref).max()
        assert err < 1e-5, (t, err)


def test_every_origin_at_once_against_cross_validate(fitted, ett):
    """All 1,900-odd origins: the stream against one vectorised cross_validate."""
    values = ett.to_numpy()
    stream = fitted.stream(batch_size=1)
    outs = np.stack([stream.update(values[t:t + 1])[0, ..., 0].numpy().copy() for t in range(T - H)])
    n = T - H - (L - 1)
    bt = fitted.cross_validate(ett, n_windows=n, step=1)
    got = bt.forecasts
    for j, name in enumerate(ett.columns):
        ref = got[got.unique_id == name]["forecast"].to_numpy().reshape(n, H)
        assert np.abs(outs[L - 1:, j] - ref).max() / np.abs(ref).max() < 1e-5


def test_batched_rows_with_staggered_starts(fitted, ett):
    values = ett.to_numpy()
    stream = fitted.stream(batch_size=2)
    for t in range(300):
        x = np.stack([values[t], values[t - 100] if t >= 100 else np.full(7, np.nan)])
        out = stream.update(x, active=torch.tensor([True, t >= 100]))
    assert stream.steps.tolist() == [300, 200]
    for row, end in [(0, 300), (1, 200)]:
        ref = fitted.predict(y=ett.iloc[:end]).to_numpy().reshape(H, 4, 7).transpose(2, 0, 1)
        assert np.abs(out[row].numpy() - ref).max() / np.abs(ref).max() < 1e-5


def test_forecaster_checkpoint_in_fresh_process(fitted, ett, tmp_path):
    values = ett.to_numpy()[:400]
    fitted.save(tmp_path / "model.xseq")
    stream = fitted.stream()
    for t in range(200):
        stream.update(values[t:t + 1])
    checkpoint = stream.state_dict()
    expected = torch.stack([stream.update(values[t:t + 1]) for t in range(200, 400)])
    resumed = resume_in_fresh_process(tmp_path, checkpoint, f"""
        from xseq import XLSTMForecaster
        model = XLSTMForecaster.load({str(tmp_path / 'model.xseq')!r})
        """, values, "x[t:t + 1]", range(200, 400))
    assert torch.equal(resumed, expected)


def test_forecaster_stream_bad_input(fitted, ett):
    stream = fitted.stream()
    with pytest.raises(ValueError, match=r"\(1, 7\)"):
        stream.update(np.zeros((1, 6)))
    with pytest.raises(ValueError, match="NaN"):
        stream.update(np.full((1, 7), np.nan))
    with pytest.raises(ValueError, match="x must"):
        stream.update(np.array([["a"] * 7]))
    other = XLSTMForecaster(H, L, patch_len=8, d_model=16, layout="ms", max_epochs=1, max_train_windows=500,
                            cross_series=8, quantiles=[0.1, 0.9], quantile_epochs=1, progress_bar=False,
                            threads=1, seed=1).fit(ett.iloc[:1200])
    with pytest.raises(ValueError, match="written by another model"):
        other.stream().load_state_dict(stream.state_dict())
    with pytest.raises(ValueError, match="NotFitted|not fitted"):
        XLSTMForecaster(H, L).stream()
