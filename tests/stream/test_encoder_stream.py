"""Encoder streams: the output after observation t equals the parallel answer on the prefix [0, t]."""
import json

import pytest
import torch

import xseq
from tests.helpers import rel_err
from tests.stream._resume import resume_in_fresh_process
from xseq.datasets import load_ett

T = 2000


@pytest.fixture(scope="module")
def ett(data_dir):
    """The first 2,000 hours of ETTh1, z-normalised, as (1, T, 7)."""
    v = torch.tensor(load_ett(data_dir=data_dir).to_numpy()[:T], dtype=torch.float32)
    return ((v - v.mean(0)) / v.std(0)).unsqueeze(0)


def make_encoder(layout: str, seed: int = 0):
    torch.manual_seed(seed)
    enc = xseq.XLSTMEncoder(xseq.XLSTMConfig(d_model=32, layout=layout, mlstm=dict(num_heads=2),
                                             slstm=dict(num_heads=2))).eval()
    with torch.no_grad():  # give the sLSTM recurrence (zero at init) and the gates something to do
        for name, p in enc.named_parameters():
            if name.endswith(".R") or "gate" in name:
                p.add_(0.3 * torch.randn_like(p))
    return enc


def embed(x: torch.Tensor, seed: int = 1) -> torch.Tensor:
    """A fixed random projection of the 7 ETT channels to d_model = 32."""
    g = torch.Generator().manual_seed(seed)
    return x @ torch.randn(x.shape[-1], 32, generator=g) / x.shape[-1] ** 0.5


@pytest.mark.parametrize("layout", ["m", "s", "msms"])
def test_stream_equals_batch_prefix_on_ett(ett, layout):
    enc = make_encoder(layout)
    x = embed(ett)
    stream = enc.stream(batch_size=1)
    outs = torch.stack([stream.update(x[:, t]) for t in range(T)], dim=1)
    assert stream.steps.tolist() == [T]
    with torch.no_grad():
        for t in [0, 1, 2, 3, 63, 64, 65, 200, 511, 999, 1500, T - 1]:
            prefix, _ = enc(x[:, :t + 1])
            assert rel_err(outs[:, t], prefix[:, -1]) < 1e-5, t
        full, _ = enc(x)
    errs = [rel_err(outs[:, t], full[:, t]) for t in range(0, T, 7)]
    assert max(errs) < 1e-5


def test_rows_start_and_stop_at_different_times(ett):
    enc = make_encoder("msms")
    x = embed(ett)[0, :300]
    stream = enc.stream(batch_size=3)
    starts, stops = [0, 40, 100], [300, 250, 300]
    got = [[] for _ in range(3)]
    for t in range(300):
        active = torch.tensor([s <= t < e for s, e in zip(starts, stops)])
        xt = torch.full((3, 32), float("nan"))  # rows without an observation hold NaN placeholders
        xt[active] = x[t]
        out = stream.update(xt, active=active)
        for r in range(3):
            if active[r]:
                got[r].append(out[r])
            elif t >= starts[r]:  # a stopped row keeps emitting its last output
                assert torch.equal(out[r], got[r][-1])
    assert stream.steps.tolist() == [300, 210, 200]
    with torch.no_grad():
        for r in range(3):
            ref, _ = enc(x[None, starts[r]:stops[r]])
            assert rel_err(torch.stack(got[r]), ref[0]) < 1e-5


def test_reset_rows_restarts_them(ett):
    enc = make_encoder("ms")
    x = embed(ett)[0, :120]
    stream = enc.stream(batch_size=2)
    for t in range(60):
        stream.update(x[t].expand(2, 32))
    stream.reset(rows=[1])
    assert stream.steps.tolist() == [60, 0]
    for t in range(60):
        out = stream.update(x[t].expand(2, 32))
    with torch.no_grad():
        ref, _ = enc(x[None, :60])
        both, _ = enc(torch.cat([x[:60], x[:60]])[None])  # row 0 saw the 60 steps twice
    assert rel_err(out[1], ref[0, -1]) < 1e-5
    assert rel_err(out[0], both[0, -1]) < 1e-5
    stream.reset()
    assert stream.steps.tolist() == [0, 0]
    assert rel_err(stream.update(x[0].expand(2, 32))[0], ref[0, 0]) < 1e-5


def test_constant_memory_and_inference_mode(ett):
    enc = make_encoder("msms")
    x = embed(ett)[0]
    stream = enc.stream(batch_size=1)

    def size():
        return sum(v.numel() for v in stream.state_dict()["state"].values())

    stream.update(x[:1])
    first = size()
    with torch.inference_mode():  # the user's own inference_mode is fine too
        for t in range(1, 500):
            out = stream.update(x[t:t + 1])
    assert size() == first
    assert not out.requires_grad
    stream.update(x[500:501])  # and leaving it again


def test_checkpoint_in_fresh_process_continues_identically(ett, tmp_path):
    enc = make_encoder("msms", seed=3)
    x = embed(ett)[0, :400]
    torch.save(enc.state_dict(), tmp_path / "enc.pt")
    stream = enc.stream(batch_size=2)
    for t in range(250):
        stream.update(torch.stack([x[t], x[399 - t]]))
    checkpoint = stream.state_dict()
    expected = torch.stack([stream.update(torch.stack([x[t], x[399 - t]])) for t in range(250, 400)])
    resumed = resume_in_fresh_process(tmp_path, checkpoint, f"""
        from tests.stream.test_encoder_stream import make_encoder
        model = make_encoder("msms", seed=99)   # other weights, then the saved ones
        model.load_state_dict(torch.load({str(tmp_path / 'enc.pt')!r}, weights_only=True))
        """, x.numpy(), "torch.from_numpy(np.stack([x[t], x[399 - t]]))", range(250, 400))
    assert torch.equal(resumed, expected)


def test_bad_input_is_refused(ett):
    enc = make_encoder("ms")
    stream = enc.stream(batch_size=2)
    with pytest.raises(ValueError, match=r"shape \(batch_size, n_features\) = \(2, 32\)"):
        stream.update(torch.zeros(2, 31))
    with pytest.raises(ValueError, match=r"shape \(batch_size, n_features\) = \(2, 32\)"):
        stream.update(torch.zeros(32))
    x = torch.zeros(2, 32)
    x[1, 5] = float("nan")
    with pytest.raises(ValueError, match=r"NaN or infinite values in rows \[1\]"):
        stream.update(x)
    stream.update(x, active=torch.tensor([True, False]))  # a placeholder in an inactive row is fine
    assert stream.steps.tolist() == [1, 0]
    with pytest.raises(ValueError, match="active as a mask must have shape"):
        stream.update(torch.zeros(2, 32), active=torch.tensor([True]))
    with pytest.raises(ValueError, match="outside"):
        stream.reset(rows=[2])
    with pytest.raises(ValueError, match="real numbers"):
        stream.update(torch.zeros(2, 32, dtype=torch.bool))
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        enc.stream(batch_size=0)

    other = make_encoder("ms", seed=5)  # same architecture, other weights
    with pytest.raises(ValueError, match="written by another model"):
        other.stream().load_state_dict(stream.state_dict())
    bigger = make_encoder("msm")
    with pytest.raises(ValueError, match="written by another model"):
        bigger.stream().load_state_dict(stream.state_dict())
    with pytest.raises(ValueError, match="must come from Stream.state_dict"):
        enc.stream().load_state_dict({"state": {}})
    sd = stream.state_dict()
    sd["state"].pop(next(iter(sd["state"])))
    with pytest.raises(ValueError, match="do not match"):
        enc.stream().load_state_dict(sd)
    json.loads(stream.state_dict()["identity"])  # the identity is readable
