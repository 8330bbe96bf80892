import io

import pytest
import torch
from tensordict import TensorDict

import xseq
from tests.helpers import rel_err
from xseq import XLSTMConfig, XLSTMEncoder

LAYOUTS = ["m", "s", "msms"]


def make_encoder(layout, d_model=32, seed=0, **kw):
    torch.manual_seed(seed)
    enc = XLSTMEncoder(XLSTMConfig(d_model=d_model, layout=layout, mlstm=dict(chunk_size=16), **kw))
    with torch.no_grad():  # move off the init (zero R, zero gate weights) so that every path matters
        for p in enc.parameters():
            p.add_(0.2 * torch.randn_like(p))
    return enc.eval()


def run_steps(enc, x, state=None):
    ys = []
    for t in range(x.shape[1]):
        y, state = enc.step(x[:, t], state)
        ys.append(y)
    return torch.stack(ys, 1), state


def assert_states_close(a: TensorDict, b: TensorDict, tol):
    assert set(a.keys(True, True)) == set(b.keys(True, True))
    for key in a.keys(True, True):
        x, y = a[key], b[key]
        if key[-1] == "m":  # the stabiliser may be -inf (nothing stored); compare where finite
            assert torch.equal(torch.isinf(x), torch.isinf(y)), key
            x, y = x[torch.isfinite(x)], y[torch.isfinite(y)]
            if x.numel() == 0:
                continue
        assert rel_err(x, y) <= tol, (key, rel_err(x, y))


@pytest.mark.parametrize("layout", LAYOUTS)
def test_step_equals_parallel(layout):
    enc = make_encoder(layout)
    x = torch.randn(3, 64, 32)
    with torch.no_grad():
        y_par, s_par = enc(x)
        y_step, s_step = run_steps(enc, x)
    assert rel_err(y_step, y_par) <= 1e-5
    assert_states_close(s_step, s_par, 1e-5)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_step_equals_parallel_from_carried_state(layout):
    enc = make_encoder(layout)
    x = torch.randn(2, 80, 32)
    with torch.no_grad():
        _, s0 = enc(x[:, :16])  # conv buffers and cells are both non-trivial now
        y_par, s_par = enc(x[:, 16:], s0)
        y_step, s_step = run_steps(enc, x[:, 16:], s0)
    assert rel_err(y_step, y_par) <= 1e-5
    assert_states_close(s_step, s_par, 1e-5)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("mode", ["parallel", "chunkwise", "recurrent"])
def test_continuation_equals_one_call(layout, mode):
    enc = make_encoder(layout)
    enc.config.mlstm.mode = mode  # the blocks share the config object
    x = torch.randn(2, 50, 32, requires_grad=True)
    y_full, s_full = enc(x)
    y1, s1 = enc(x[:, :2])  # shorter than the conv kernel: the conv buffer carries older zeros
    y2, s2 = enc(x[:, 2:21], s1)
    y3, s3 = enc(x[:, 21:], s2)
    y_cat = torch.cat([y1, y2, y3], 1)
    assert rel_err(y_cat, y_full) <= 1e-5
    assert_states_close(s3, s_full, 1e-5)
    g = torch.randn_like(y_full)
    grad_full = torch.autograd.grad((y_full * g).sum(), x)[0]
    grad_cat = torch.autograd.grad((y_cat * g).sum(), x)[0]
    assert rel_err(grad_cat, grad_full) <= 1e-5


def test_state_is_tensordict_and_survives_save_load():
    enc = make_encoder("msms")
    x = torch.randn(4, 30, 32)
    with torch.no_grad():
        _, state = enc(x[:, :20])
        assert isinstance(state, TensorDict) and state.batch_size == torch.Size([4])
        buf = io.BytesIO()
        torch.save(state, buf)
        buf.seek(0)
        loaded = torch.load(buf, weights_only=False)
        y_a, _ = enc(x[:, 20:], state)
        y_b, _ = enc(x[:, 20:], loaded)
    assert torch.equal(y_a, y_b)
    # plain tensors too, for weights_only loading
    buf = io.BytesIO()
    torch.save(state.to_dict(), buf)
    buf.seek(0)
    restored = TensorDict(torch.load(buf, weights_only=True), batch_size=[4])
    with torch.no_grad():
        assert torch.equal(enc(x[:, 20:], restored)[0], y_a)


def test_rows_of_the_state_can_be_indexed_and_reset():
    enc = make_encoder("msms")
    x = torch.randn(3, 12, 32)
    with torch.no_grad():
        _, state = enc(x)
        sub = state[1:]
        assert sub.batch_size == torch.Size([2])
        reset = enc.reset_state(state, torch.tensor([True, False, True]))
        assert not any(torch.isnan(v).any() for v in reset.values(True, True))
        y_reset, _ = enc(x, reset)
        y_fresh, _ = enc(x)
        y_cont, _ = enc(x, state)
    assert rel_err(y_reset[[0, 2]], y_fresh[[0, 2]]) <= 1e-6
    assert rel_err(y_reset[1], y_cont[1]) <= 1e-6


def test_bfloat16_input_runs_with_float32_state():
    enc = make_encoder("ms").to(torch.bfloat16)
    y, state = enc(torch.randn(2, 20, 32, dtype=torch.bfloat16))
    assert y.dtype == torch.bfloat16 and state["block_0", "C"].dtype == torch.float32
    y_t, _ = enc.step(torch.randn(2, 32, dtype=torch.bfloat16), state)
    assert y_t.dtype == torch.bfloat16 and torch.isfinite(y_t.float()).all()


def test_parameter_counts_match_paper_table7_blocks():
    """Table 7, 125M (d = 768): xLSTM[1:0] has 163.8M and xLSTM[7:1] 163.7M parameters. With a vocabulary of
    50,304 and an untied head the embeddings hold 77,266,944, leaving 3,605,768 per mLSTM block and
    3,548,160 per sLSTM block (24 blocks, sLSTM at [3, 20]). Built on the meta device: nothing allocated."""
    with torch.device("meta"):
        enc = XLSTMEncoder(XLSTMConfig(d_model=768, num_blocks=24, slstm_at=[3, 20]))
    counts = [sum(p.numel() for p in blk.parameters()) for blk in enc.blocks]
    assert counts[0] == 3_605_768 and counts[3] == 3_548_160
    total = sum(p.numel() for p in enc.parameters()) + 2 * 50_304 * 768
    assert round(total / 1e6, 1) == 163.7


def bad(match):
    return pytest.raises(ValueError, match=match)


def test_bad_inputs():
    enc = make_encoder("ms")
    with bad("x must be"):
        enc(torch.randn(2, 5, 31))
    with bad("x must be"):
        enc(torch.randn(2, 32))
    with bad("x must be a floating"):
        enc(torch.ones(2, 5, 32, dtype=torch.long))
    with bad("x contains"):
        enc(torch.full((2, 5, 32), float("nan")))
    with bad("x must be"):
        enc.step(torch.randn(2, 5, 32))
    _, state = enc(torch.randn(2, 5, 32))
    with bad("state.*batch size 3"):
        enc(torch.randn(3, 5, 32), state)
    other = make_encoder("mm")
    with bad("state does not fit"):
        other(torch.randn(2, 5, 32), state)
    with bad("state must be a TensorDict"):
        enc(torch.randn(2, 5, 32), {"block_0": {}})
    with bad("mask"):
        enc.reset_state(state, torch.tensor([1, 0]))
    with bad("batch_size"):
        enc.init_state(0)


@pytest.mark.parametrize("kwargs,match", [
    (dict(d_model=33, layout="m"), "num_heads .* must divide the inner size"),
    (dict(d_model=30, layout="s"), "SLSTMLayerConfig.num_heads"),
    (dict(d_model=32, layout="mxs"), "layout has unknown block type"),
    (dict(d_model=32, num_blocks=4, slstm_at=[4]), "slstm_at"),
    (dict(d_model=32, num_blocks=4, slstm_at=[1, 1]), "slstm_at has duplicates"),
    (dict(d_model=32, layout="ms", slstm_at=[1]), "exclusive"),
    (dict(d_model=32, layout="ms", num_blocks=3), "num_blocks"),
    (dict(d_model=32), "num_blocks"),
    (dict(d_model=0, layout="m"), "d_model"),
    (dict(d_model=32, layout="m", mlstm=dict(mode="fast")), "MLSTMLayerConfig.mode"),
    (dict(d_model=32, layout="m", mlstm=dict(qkv_block_size=5)), "qkv_block_size"),
    (dict(d_model=32, layout="s", slstm=dict(forget="relu")), "SLSTMLayerConfig.forget"),
    (dict(d_model=32, layout="s", slstm=dict(heads=2)), "unknown SLSTMLayerConfig field"),
    (dict(d_model=32, layout="m", dropout=1.0), "dropout"),
    (dict(d_model=32, layout="s", slstm=dict(recurrent_init="ones")), "recurrent_init"),
    (dict(d_model=32, layout="s", slstm=dict(fgate_bias_range=[6, 3])), "fgate_bias_range"),
])
def test_config_validation(kwargs, match):
    with bad(match):
        XLSTMConfig(**kwargs)


def test_config_round_trips_through_dict():
    cfg = XLSTMConfig(d_model=64, num_blocks=4, slstm_at=[1], slstm=dict(forget="exp"))
    again = XLSTMConfig.from_dict(cfg.to_dict())
    assert again == cfg and again.block_types == ["m", "s", "m", "m"]
    with bad("unknown XLSTMConfig field"):
        XLSTMConfig.from_dict({"d_model": 8, "layout": "m", "depth": 3})


def test_slstm_init_options():
    enc = XLSTMEncoder(XLSTMConfig(d_model=32, layout="s", slstm=dict(num_heads=2)))
    layer = enc.blocks[0].layer
    assert (layer.R == 0).all() and layer.bias[1, :, 0].tolist() == [3.0, 6.0]  # Table 6 defaults
    enc = XLSTMEncoder(XLSTMConfig(d_model=32, layout="s", slstm=dict(num_heads=2, recurrent_init="normal",
                                                                      fgate_bias_range=[0.0, 1.0])))
    layer = enc.blocks[0].layer
    assert abs(layer.R.std().item() - 16 ** -0.5) < 0.05 and layer.bias[1, :, 0].tolist() == [0.0, 1.0]


def test_public_api_is_exported():
    for name in ("XLSTMConfig", "XLSTMEncoder", "ops"):
        assert hasattr(xseq, name)
    for name in ("mlstm", "mlstm_step", "slstm", "slstm_step"):
        assert callable(getattr(xseq.ops, name))
