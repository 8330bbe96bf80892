"""The compiled inference step (the "numba" backend of the ops mlstm_block_step/slstm_block_step) against the
PyTorch step, state by state."""
import copy
import pickle

import pytest
import torch

import xseq
from tests.helpers import rel_err
from xseq.ops.slstm.block_step import MAX_BATCH


def make(layout, seed=0, **slstm):
    torch.manual_seed(seed)
    cfg = xseq.XLSTMConfig(d_model=64, layout=layout, slstm=dict(num_heads=4, **slstm), mlstm=dict(num_heads=4))
    enc = xseq.XLSTMEncoder(cfg).eval()
    with torch.no_grad():  # move every weight off its init (zero R, zero gate weights, unit norms)
        for p in enc.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return enc


def run(enc, xs, fast: bool):
    state = enc.init_state(xs.shape[0])
    outs = []
    with torch.set_grad_enabled(not fast):
        for t in range(xs.shape[1]):
            y, state = enc.step_unchecked(xs[:, t], state)
            outs.append(y.detach())
    return torch.stack(outs, 1), state


@pytest.mark.parametrize("layout,slstm", [("m", {}), ("s", {}), ("msmm", {}), ("sm", dict(conv_kernel=0)),
                                          ("s", dict(forget="exp"))])
@pytest.mark.parametrize("B", [1, 3])
def test_fast_step_equals_torch_step(layout, slstm, B):
    enc = make(layout, **slstm)
    xs = torch.randn(B, 60, 64) * 2
    y_fast, s_fast = run(enc, xs, fast=True)
    with torch.no_grad():
        assert enc.fused_step_applies(xs[:, 0])  # the fast path did run
    y_ref, s_ref = run(enc, xs, fast=False)
    assert rel_err(y_fast, y_ref) < 1e-5
    for key, ref in s_ref.items(include_nested=True, leaves_only=True):
        assert rel_err(s_fast[key], ref) < 1e-5, key
    with torch.no_grad():
        y_par, _ = enc(xs)
    assert rel_err(y_fast, y_par) < 1e-5


def test_extreme_gates():
    enc = make("msmm")
    with torch.no_grad():
        for blk in enc.blocks:
            L = blk.layer
            if hasattr(L, "igate"):
                L.igate.bias.add_(torch.empty_like(L.igate.bias).uniform_(-40, 40))
                L.fgate.bias.add_(torch.empty_like(L.fgate.bias).uniform_(-40, 40))
            else:
                L.bias[:2].add_(torch.empty_like(L.bias[:2]).uniform_(-40, 40))
    xs = torch.randn(2, 50, 64)
    y_fast, _ = run(enc, xs, fast=True)
    y_ref, _ = run(enc, xs, fast=False)
    assert torch.isfinite(y_fast).all() and rel_err(y_fast, y_ref) < 1e-4  # the ops' tolerance for extreme gates


def test_when_it_applies():
    enc = make("ms")
    x = torch.randn(1, 64)
    with torch.no_grad():
        enc.step_unchecked(x, enc.init_state(1))
        assert enc.fused_step_applies(x)
        assert not enc.fused_step_applies(torch.randn(MAX_BATCH + 1, 64))
        assert not enc.fused_step_applies(x.double())
    assert not enc.fused_step_applies(x)  # autograd on: the PyTorch step, which can be differentiated
    drop = xseq.XLSTMEncoder(xseq.XLSTMConfig(d_model=64, layout="m", dropout=0.1)).train()
    with torch.no_grad():
        drop.step_unchecked(x, drop.init_state(1))
        assert not drop.fused_step_applies(x)
        drop.eval()
        assert drop.fused_step_applies(x)


def test_sees_weight_updates_and_moves():
    enc = make("ms")
    xs = torch.randn(1, 20, 64)
    before, _ = run(enc, xs, fast=True)
    with torch.no_grad():
        enc.blocks[0].layer.up.weight.mul_(1.5)  # an in-place update, as an optimiser makes
    after, _ = run(enc, xs, fast=True)
    ref, _ = run(enc, xs, fast=False)
    assert not torch.allclose(before, after) and rel_err(after, ref) < 1e-5
    enc.load_state_dict({k: v * 0.9 for k, v in enc.state_dict().items()}, assign=True)  # new tensors
    y, _ = run(enc, xs, fast=True)
    assert rel_err(y, run(enc, xs, fast=False)[0]) < 1e-5
    enc.double()
    with torch.no_grad():
        y64, _ = enc.step_unchecked(xs[:, 0].double(), enc.init_state(1))  # not float32: the PyTorch step
    assert y64.dtype == torch.float64
    for clone in (copy.deepcopy(enc.float()), pickle.loads(pickle.dumps(enc))):
        assert rel_err(run(clone, xs, fast=True)[0], run(enc, xs, fast=False)[0]) < 1e-5


def test_threads_stepping_one_encoder_agree_with_one_thread():
    """Two threads streaming different sequences through one encoder (the fused step caches views and the last
    state per block) get exactly what each would get alone."""
    import threading

    enc = make("mmsm")
    xs = [torch.randn(1, 200, 64), torch.randn(1, 200, 64)]
    alone = [run(enc, x, fast=True)[0] for x in xs]
    got = [None, None]

    def work(i):
        got[i] = run(enc, xs[i], fast=True)[0]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for a, g in zip(alone, got):
        assert torch.equal(a, g)
