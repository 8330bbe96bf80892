"""Hostile input, generated (Hypothesis): the public ops, the encoder's two faces and Stream.update either work
(finite outputs of the documented shape) or raise ValueError/TypeError naming the argument. Never an
IndexError, a bare RuntimeError from inside torch, a crash in compiled code or a NaN result."""
import math
import os
import re

import pytest
import torch

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import xseq  # noqa: E402
from xseq import ops  # noqa: E402

# CI runs 60 cases per property; XSEQ_HYPOTHESIS_EXAMPLES=1000 runs the long search
EXAMPLES = int(os.environ.get("XSEQ_HYPOTHESIS_EXAMPLES", 60))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DTYPES = [torch.float32, torch.float64, torch.bfloat16, torch.float16, torch.int64, torch.bool]
POISON = st.sampled_from([None, float("nan"), float("inf"), -float("inf"), 1e30, -1e4, 1e4])


def tensor(shape, dtype, poison=None, scale=1.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    if dtype == torch.bool:
        return torch.rand(shape, generator=g) > 0.5
    if not dtype.is_floating_point:
        return torch.randint(-3, 3, shape, generator=g, dtype=dtype)
    x = torch.randn(shape, generator=g) * scale
    if poison is not None and x.numel():
        x.view(-1)[0] = poison
    return x.to(dtype)


def check_outcome(fn, names, finite_inputs: bool):
    """Run fn(); a ValueError/TypeError must name one of `names`; a result must be finite where the inputs are."""
    try:
        out = fn()
    except (ValueError, TypeError) as e:
        msg = str(e)
        assert any(re.search(rf"\b{re.escape(n)}\b", msg) for n in names), f"message names no argument: {msg}"
        return None
    leaves = [t for t in _leaves(out) if isinstance(t, torch.Tensor) and t.is_floating_point()]
    if finite_inputs:
        for t in leaves:
            bad = torch.isnan(t) | (t == float("inf"))  # -inf is a valid stabiliser m in a fresh state
            assert not bool(bad.any()), "a result holds NaN or +inf"
    return out


def _leaves(x):
    if isinstance(x, torch.Tensor):
        yield x
    elif isinstance(x, (tuple, list)):
        for v in x:
            yield from _leaves(v)
    elif hasattr(x, "values") and hasattr(x, "keys") and hasattr(x, "batch_size"):
        for v in x.values(True, True):
            yield v


@SETTINGS
@given(B=st.integers(0, 3), T=st.integers(0, 5), H=st.integers(1, 3), Dh=st.integers(1, 6),
       dtype=st.sampled_from(DTYPES), rdtype=st.sampled_from(DTYPES[:4]), poison=POISON,
       backend=st.sampled_from(["auto", "torch", "numba"]), forget=st.sampled_from(["sigmoid", "exp", "relu"]),
       bad_R=st.booleans(), seed=st.integers(0, 2**16))
def test_slstm_hostile(B, T, H, Dh, dtype, rdtype, poison, backend, forget, bad_R, seed):
    gx = tensor((B, T, 4, H, Dh), dtype, poison, seed=seed)
    R = tensor((4, H, Dh + int(bad_R), Dh), rdtype, seed=seed + 1)
    finite = poison is None or math.isfinite(poison)
    out = check_outcome(lambda: ops.slstm(gx, R, forget=forget, backend=backend), ["gx", "R", "forget", "backend"],
                        finite)
    if out is not None:
        assert out[0].shape == (B, T, H, Dh)
    gx1 = tensor((B, 4, H, Dh), dtype, poison, seed=seed)
    out = check_outcome(lambda: ops.slstm_step(gx1, R, forget=forget), ["gx", "R", "forget"], finite)
    if out is not None:
        assert out[0].shape == (B, H, Dh)


@SETTINGS
@given(B=st.integers(0, 2), H=st.integers(1, 2), T=st.integers(0, 70), Dqk=st.integers(1, 8),
       Dv=st.integers(1, 8), dtype=st.sampled_from(DTYPES), gate_scale=st.sampled_from([1.0, 1e2, 1e4]),
       poison=POISON, mode=st.sampled_from(["auto", "parallel", "chunkwise", "recurrent", "fast"]),
       chunk=st.sampled_from([1, 16, 64, 0]), mismatch=st.booleans(), seed=st.integers(0, 2**16))
def test_mlstm_hostile(B, H, T, Dqk, Dv, dtype, gate_scale, poison, mode, chunk, mismatch, seed):
    q = tensor((B, H, T, Dqk), dtype, poison, seed=seed)
    k = tensor((B, H, T + int(mismatch), Dqk), dtype, seed=seed + 1)
    v = tensor((B, H, T, Dv), dtype, seed=seed + 2)
    ig, fg = (tensor((B, H, T), dtype, scale=gate_scale, seed=seed + s) for s in (3, 4))
    finite = poison is None or math.isfinite(poison)
    out = check_outcome(lambda: ops.mlstm(q, k, v, ig, fg, mode=mode, chunk_size=chunk),
                        ["q", "k", "v", "igate", "fgate", "mode", "chunk_size"], finite)
    if out is not None:
        assert out[0].shape == (B, H, T, Dv)
    out = check_outcome(lambda: ops.mlstm_step(q[:, :, 0] if T else q.sum(2), k[:, :, 0] if k.shape[2] else
                                               k.sum(2), v[:, :, 0] if T else v.sum(2),
                                               ig[..., 0] if T else ig.sum(-1), fg[..., 0] if T else fg.sum(-1)),
                        ["q", "k", "v", "igate", "fgate"], finite)


_ENCODERS = {}


def encoder(layout):
    if layout not in _ENCODERS:
        torch.manual_seed(0)
        _ENCODERS[layout] = xseq.XLSTMEncoder(xseq.XLSTMConfig(d_model=16, layout=layout, slstm=dict(num_heads=2),
                                                                mlstm=dict(num_heads=2))).eval()
    return _ENCODERS[layout]


@SETTINGS
@given(layout=st.sampled_from(["m", "s", "ms"]), B=st.integers(0, 3), T=st.integers(0, 6),
       d=st.sampled_from([16, 15, 0]), dtype=st.sampled_from(DTYPES), poison=POISON,
       scale=st.sampled_from([1e-6, 1.0, 1e6]), grad=st.booleans(), seed=st.integers(0, 2**16))
def test_encoder_two_faces_hostile(layout, B, T, d, dtype, poison, scale, grad, seed):
    enc = encoder(layout)
    x = tensor((B, T, d), dtype, poison, scale=scale, seed=seed)
    finite = poison is None or math.isfinite(poison)
    with torch.set_grad_enabled(grad):
        out = check_outcome(lambda: enc(x), ["x", "state"], finite)
        if out is not None:
            assert out[0].shape == (B, T, d)
        x1 = tensor((B, d), dtype, poison, scale=scale, seed=seed)
        out = check_outcome(lambda: enc.step(x1), ["x", "state"], finite)
        if out is not None:
            y, state = out
            assert y.shape == (B, d)
            # a state of another batch size or from another encoder is refused by name
            other = encoder("s" if layout != "s" else "m").init_state(max(B, 1))
            check_outcome(lambda: enc.step(x1, other), ["state"], True)
            check_outcome(lambda: enc.step(x1, {"block_0": 1}), ["state"], True)


@SETTINGS
@given(B=st.integers(1, 3), n=st.sampled_from([16, 15, 17]), dtype=st.sampled_from(DTYPES), poison=POISON,
       active=st.sampled_from([None, "all", "none", "some", "wrong"]), seed=st.integers(0, 2**16))
def test_stream_update_hostile(B, n, dtype, poison, active, seed):
    stream = encoder("ms").stream(batch_size=B)
    x = tensor((B, n), dtype, poison, seed=seed)
    mask = {None: None, "all": torch.ones(B, dtype=torch.bool), "none": torch.zeros(B, dtype=torch.bool),
            "some": torch.arange(B) % 2 == 0, "wrong": torch.ones(B + 1, dtype=torch.bool)}[active]
    finite = poison is None or math.isfinite(poison)
    check_outcome(lambda: stream.update(x, active=mask), ["x", "active", "observation"], finite)
