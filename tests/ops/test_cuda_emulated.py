"""The CUDA kernels of csrc/cuda run on the CPU through the emulator (csrc/cuda/emu, xseq/ops/_cuda_emu.py):
the same kernel source and the same autograd wiring as on a GPU, checked against the PyTorch reference on
every machine, with the fibers of each block run in forward, reverse and shuffled order (a missing barrier
makes the results depend on that order). The emulator's own checks are tested first, on kernels that are
wrong in known ways. The gpu-marked tests (test_slstm_cuda.py, test_mlstm_cuda.py) run the same kernels on
a device."""
import importlib

import pytest
import torch

from xseq import ops
from xseq.ops import _cuda_emu, _cuda_ext, mlstm_cuda, slstm_cuda, slstm_ref
from tests.helpers import rel_err
from tests.ops.test_slstm import make_inputs, random_state

# the op modules (xseq.ops re-exports functions of the same names)
slstm = importlib.import_module("xseq.ops.slstm")
mlstm = importlib.import_module("xseq.ops.mlstm")
pytestmark = pytest.mark.skipif(_cuda_emu.compiler() is None, reason="the CUDA emulator needs a C++ compiler")


@pytest.fixture(params=["forward", "reverse", "shuffle"])
def emulated(request, monkeypatch):
    """The CUDA backends with the emulator in place of the compiled extensions, in one fiber order."""
    _cuda_emu.configure(request.param, seed=torch.seed() % 2**31)
    monkeypatch.setattr(_cuda_ext, "usable", lambda stem, what: True)
    monkeypatch.setattr(slstm_cuda, "extension", lambda: _cuda_emu.SLSTM)
    monkeypatch.setattr(mlstm_cuda, "extension", lambda: _cuda_emu.MLSTM)
    before = _cuda_emu.launches()
    yield request.param
    _cuda_emu.configure()
    assert _cuda_emu.launches() > before, "the emulated kernels never ran"


# ---- the emulator's own checks --------------------------------------------------------------------------------

@pytest.mark.parametrize("order", ["forward", "reverse", "shuffle"])
def test_emulator_runs_a_correct_kernel_alike_in_every_order(order):
    _cuda_emu.configure(order, seed=1)
    out = torch.zeros(3 * 40)
    assert _cuda_emu.selftest(0, out, threads=40, blocks=3, smem=40 * 4) == 0
    i = torch.arange(40)
    assert torch.equal(out, (((i + 1) % 40) ** 2).float().repeat(3))
    out = torch.zeros(3)
    assert _cuda_emu.selftest(2, out, threads=96) == 0
    assert out.tolist() == [496.0] * 3
    _cuda_emu.configure()


def test_emulator_exposes_a_missing_barrier():
    results = []
    for order in ("forward", "reverse"):
        _cuda_emu.configure(order)
        out = torch.zeros(40)
        assert _cuda_emu.selftest(1, out, threads=40, smem=40 * 4) == 0
        results.append(out)
    _cuda_emu.configure()
    expected = (((torch.arange(40) + 1) % 40) ** 2).float()
    # the read before the neighbour's write sees the NaN bytes shared memory starts with, in one order or the other
    assert not all(torch.equal(r, expected) for r in results)
    assert any(torch.isnan(r).any() for r in results)


def test_emulator_reports_divergent_barriers_and_bad_launches():
    out = torch.zeros(64)
    err = _cuda_emu.selftest(3, out, threads=64)
    assert err != 0 and "warp-wide op" in _cuda_emu.error_string(err)
    err = _cuda_emu.selftest(0, torch.zeros(2048), threads=2048)
    assert err != 0 and "threads per block" in _cuda_emu.error_string(err)
    err = _cuda_emu.selftest(0, torch.zeros(64), threads=64, smem=64 * 1024)  # no opt-in attribute set
    assert err != 0 and "dynamic shared memory" in _cuda_emu.error_string(err)
    assert _cuda_emu.selftest(0, out, threads=64, smem=64 * 4) == 0  # the error does not stick


# ---- sLSTM ------------------------------------------------------------------------------------------------------

def run_slstm(fn, gx, R, st0, forget, w):
    leaves = [gx.clone().requires_grad_(), R.clone().requires_grad_(), *(s.clone().requires_grad_() for s in st0)]
    h, st = fn(leaves[0], leaves[1], ops.SLSTMState(*leaves[2:]), forget=forget)
    ((h.float() * w[0]).sum() + (st.c * w[1]).sum() + (st.n * w[2]).sum() + st.h.sum()).backward()
    return h.detach(), [s.detach() for s in st], [x.grad for x in leaves]


@pytest.mark.parametrize("forget", ["sigmoid", "exp"])
@pytest.mark.parametrize("B,T,H,Dh", [(1, 1, 1, 32), (3, 21, 2, 48), (9, 6, 1, 64), (2, 5, 1, 256)])
@pytest.mark.parametrize("gate_range", [None, (-50, 50)])
def test_slstm_kernels_match_reference(emulated, forget, B, T, H, Dh, gate_range):
    gx, R = make_inputs(B=B, T=T, H=H, Dh=Dh, gate_range=gate_range, r_scale=0.5)
    st0 = random_state(B=B, H=H, Dh=Dh)
    w = [torch.randn(B, T, H, Dh), torch.randn(B, H, Dh), torch.randn(B, H, Dh)]
    h_t, s_t, g_t = run_slstm(slstm._slstm_torch, gx, R, st0, forget, w)
    h_c, s_c, g_c = run_slstm(slstm._slstm_cuda, gx, R, st0, forget, w)
    assert rel_err(h_c, h_t) <= 1e-5
    for name, a, b in zip("cnmh", s_c, s_t):
        assert rel_err(a, b) <= 1e-5, name
    floors = {"m0": ((g_t[2] * st0[0]).abs() + (g_t[3] * st0[1]).abs()).max().item(),
              "h0": g_t[0].abs().max().item() * R.abs().sum(dim=(0, 3)).max().item()}
    for name, a, b in zip(["gx", "R", "c0", "n0", "m0", "h0"], g_c, g_t):
        assert b.abs().max() > 0, name
        assert rel_err(a, b, floor=floors.get(name, 0.0)) <= 1e-5, name


def test_slstm_kernels_without_shared_memory_for_R(emulated):
    """A device whose opt-in shared memory cannot hold R's block: the kernels read R in place."""
    _cuda_emu.configure(emulated, smem_optin=48 * 1024)
    gx, R = make_inputs(B=3, T=9, H=2, Dh=64, r_scale=0.5)  # R's block: 64 KB in float32
    st0 = random_state(B=3, H=2, Dh=64)
    w = [torch.randn(3, 9, 2, 64), torch.randn(3, 2, 64), torch.randn(3, 2, 64)]
    (h_t, s_t, g_t), (h_c, s_c, g_c) = (run_slstm(f, gx, R, st0, "sigmoid", w)
                                        for f in (slstm._slstm_torch, slstm._slstm_cuda))
    assert rel_err(h_c, h_t) <= 1e-5
    for a, b in zip(g_c[:2], g_t[:2]):
        assert rel_err(a, b) <= 1e-5


@pytest.mark.parametrize("gate_range", [None, (-50, 50)])
def test_slstm_kernels_bfloat16(emulated, gate_range):
    gx, R = make_inputs(B=5, T=24, H=2, Dh=32, gate_range=gate_range, dtype=torch.bfloat16)
    gx, R = gx.requires_grad_(), R.requires_grad_()
    h, state = slstm._slstm_cuda(gx, R, None, forget="sigmoid")
    assert h.dtype == torch.bfloat16 and state.c.dtype == torch.float32
    gx_r, R_r = gx.detach().double().requires_grad_(), R.detach().double().requires_grad_()
    h_ref, _ = slstm_ref.slstm_recurrent(gx_r, R_r, slstm_ref.zero_state(gx_r))
    assert rel_err(h, h_ref) <= 2e-2
    g = torch.randn_like(h_ref)
    (h.double() * g).sum().backward()
    (h_ref * g).sum().backward()
    assert gx.grad.dtype == torch.bfloat16 and R.grad.dtype == torch.bfloat16
    assert rel_err(gx.grad, gx_r.grad) <= 5e-2
    assert rel_err(R.grad, R_r.grad) <= 5e-2


def test_slstm_kernels_carry_state_across_calls(emulated):
    gx, R = make_inputs(B=4, T=30, H=2, Dh=32)
    with torch.no_grad():
        h_all, s_all = slstm._slstm_cuda(gx, R, None, forget="sigmoid")
        h1, s1 = slstm._slstm_cuda(gx[:, :11], R, None, forget="sigmoid")
        h2, s2 = slstm._slstm_cuda(gx[:, 11:], R, s1, forget="sigmoid")
    assert rel_err(torch.cat([h1, h2], 1), h_all) <= 1e-6
    for a, b in zip(s2, s_all):
        assert rel_err(a, b) <= 1e-6


# ---- mLSTM step --------------------------------------------------------------------------------------------------

def step_inputs(B, H, Dqk, Dv, T, gate_scale, dtype=torch.float32):
    q, k = torch.randn(B, H, T, Dqk), torch.randn(B, H, T, Dqk)
    v = torch.randn(B, H, T, Dv)
    ig, fg = torch.randn(B, H, T) * gate_scale, torch.randn(B, H, T) * gate_scale
    return [x.to(dtype) for x in (q, k, v, ig, fg)]


@pytest.mark.parametrize("B,H,Dqk,Dv", [(1, 1, 16, 16), (3, 2, 64, 48), (1, 2, 96, 300)])
@pytest.mark.parametrize("gate_scale", [1.0, 30.0])
def test_mlstm_step_kernel_matches_torch_step(emulated, B, H, Dqk, Dv, gate_scale):
    """Against a float64 step: within 2e-5, or 5x the float32 PyTorch step's error where that is larger (with
    extreme gates the normaliser n^T q can nearly cancel, and both lose digits alike, summed in other orders)."""
    q, k, v, ig, fg = step_inputs(B, H, Dqk, Dv, 12, gate_scale)
    s_t = s_c = s_d = None
    with torch.no_grad():
        for t in range(12):
            args = (q[:, :, t], k[:, :, t], v[:, :, t], ig[:, :, t], fg[:, :, t])
            h_t, s_t = mlstm._mlstm_step_torch(*args, s_t)
            h_c, s_c = mlstm._mlstm_step_cuda(*args, s_c)
            h_d, s_d = mlstm._mlstm_step_torch(*(x.double() for x in args), s_d)
            assert rel_err(h_c, h_d) <= max(2e-5, 5 * rel_err(h_t, h_d)), t
    for name, a, b, d in zip("Cnm", s_c, s_t, s_d):
        assert a.dtype == torch.float32 and rel_err(a, d) <= max(2e-5, 5 * rel_err(b, d)), name


def test_mlstm_step_kernel_bfloat16(emulated):
    q, k, v, ig, fg = step_inputs(2, 2, 32, 32, 10, 1.0, torch.bfloat16)
    with torch.no_grad():
        h_seq, _ = ops.mlstm(q.float(), k.float(), v.float(), ig.float(), fg.float(), backend="torch")
        s = None
        for t in range(10):
            h, s = mlstm._mlstm_step_cuda(q[:, :, t], k[:, :, t], v[:, :, t], ig[:, :, t], fg[:, :, t], s)
            assert h.dtype == torch.bfloat16
            assert rel_err(h, h_seq[:, :, t]) <= 2e-2, t


# ---- mLSTM chunkwise ---------------------------------------------------------------------------------------------

def chunk_inputs(B, H, T, Dqk, Dv, gate_scale, with_state):
    q, k = torch.randn(B, H, T, Dqk), torch.randn(B, H, T, Dqk)
    v = torch.randn(B, H, T, Dv)
    ig, fg = torch.randn(B, H, T) * gate_scale, torch.randn(B, H, T) * gate_scale + 2.0
    state = None
    if with_state:
        state = [torch.randn(B, H, Dqk, Dv), torch.randn(B, H, Dqk), torch.randn(B, H)]
    return [q, k, v, ig, fg], state


def run_chunkwise(fn, inputs, state, weights, dtype=None):
    leaves = [x.clone().to(dtype or x.dtype).requires_grad_() for x in inputs]
    st_leaves = None if state is None else [s.clone().to(dtype or s.dtype).requires_grad_() for s in state]
    h, st = fn(*leaves, None if st_leaves is None else ops.MLSTMState(*st_leaves))
    ((h * weights[0].to(h.dtype)).sum() + (st.C * weights[1].to(st.C.dtype)).sum()
     + (st.n * weights[2].to(st.n.dtype)).sum()).backward()
    grads = [x.grad for x in leaves + (st_leaves or [])]
    return h.detach(), [s.detach() for s in st], grads


@pytest.mark.parametrize("B,H,T,Dqk,Dv", [(1, 1, 1, 16, 16), (2, 2, 70, 32, 80), (1, 2, 130, 64, 64),
                                          (1, 1, 64, 256, 256), (3, 1, 20, 48, 200)])
@pytest.mark.parametrize("gate_scale", [1.0, 10.0])
@pytest.mark.parametrize("with_state", [False, True])
def test_mlstm_chunkwise_kernels_match_reference(emulated, B, H, T, Dqk, Dv, gate_scale, with_state):
    """Outputs, final state and the gradients of q, k, v, both gates and the initial state, against the
    PyTorch chunkwise form in float64: within 1e-5, or within a small factor of the error of that form in
    float32 where that is larger (extreme gates: the same float32 conditioning, another summation order)."""
    inputs, state = chunk_inputs(B, H, T, Dqk, Dv, gate_scale, with_state)
    weights = [torch.randn(B, H, T, Dv), torch.randn(B, H, Dqk, Dv), torch.randn(B, H, Dqk)]

    def torch_form(*a):
        return mlstm._mlstm_torch(*a, mode="chunkwise", chunk_size=64)

    def cuda_form(*a):
        return mlstm._mlstm_cuda(*a, mode="auto", chunk_size=64)

    ref = run_chunkwise(torch_form, inputs, state, weights, torch.float64)
    f32 = run_chunkwise(torch_form, inputs, state, weights)
    ours = run_chunkwise(cuda_form, inputs, state, weights)

    # the SIMT kernels sum serially in float32 where torch's GEMMs sum in blocks, and the normaliser
    # amplifies either rounding where it cancels: measured up to ~6x the float32 form's error (bugs found so
    # far were 1e-3 and above: a race between column blocks gave 1.6e-3 and 0.12)
    def check(a, b, r, name, floor=0.0):
        assert rel_err(a, r, floor) <= max(5e-5, 10 * rel_err(b, r, floor)), name

    check(ours[0], f32[0], ref[0], "h")
    for name, a, b, r in zip("Cnm", ours[1], f32[1], ref[1]):
        check(a, b, r, name)
    names = ["q", "k", "v", "igate", "fgate", "C0", "n0", "m0"]
    scale = max(g.abs().max().item() for g in ref[2])
    # gradients that must not vanish
    # (at T = 1 from an empty state h = sign(q.k) v unless the lower bound of the denominator wins; with
    # extreme gates every row can be one such term)
    flows = {"v", "igate"} | ({"C0", "n0", "m0", "fgate"} if with_state else set()) | (
        {"q", "k", "fgate"} if T > 1 and gate_scale == 1.0 else set())
    for name, a, b, r in zip(names, ours[2], f32[2], ref[2]):
        assert r.abs().max() > 0 or name not in flows, name
        # measured against the scale of all the gradients of the backward pass: with extreme gates many entries
        # are tiny differences of large terms (the gate gradients come from sums of q.dq and k.dk over the
        # sequence, as in the official kernels), so a float32 rounding of those terms is what is measurable
        # (with extreme gates also the rest, where rows dominated by one term give dq ~ 0 by cancellation)
        cancelling = name.endswith("gate") or name == "m0" or gate_scale > 1.0
        check(a, b, r, name, floor=(1.0 if cancelling else 1e-2) * scale)


def test_mlstm_chunkwise_kernels_bfloat16(emulated):
    inputs, _ = chunk_inputs(2, 2, 100, 32, 32, 1.0, False)
    inputs = [x.to(torch.bfloat16) for x in inputs]  # the reference sees the same rounded inputs
    weights = [torch.randn(2, 2, 100, 32), torch.zeros(2, 2, 32, 32), torch.zeros(2, 2, 32)]
    ref = run_chunkwise(lambda *a: mlstm._mlstm_torch(*a, mode="recurrent", chunk_size=64), inputs, None, weights,
                        torch.float64)
    h, st, grads = run_chunkwise(lambda *a: mlstm._mlstm_cuda(*a, mode="auto", chunk_size=64), inputs, None,
                                 weights, torch.bfloat16)
    assert h.dtype == torch.bfloat16 and st[0].dtype == torch.float32
    assert rel_err(h, ref[0]) <= 2e-2
    for name, g, r in zip(["q", "k", "v", "igate", "fgate"], grads, ref[2]):
        assert g.dtype == torch.bfloat16 and rel_err(g, r) <= 5e-2, name


def test_mlstm_chunkwise_kernels_carry_state_across_calls(emulated):
    (q, k, v, ig, fg), _ = chunk_inputs(2, 2, 150, 32, 32, 1.0, False)
    with torch.no_grad():
        h_all, s_all = mlstm._mlstm_cuda(q, k, v, ig, fg, None, mode="auto", chunk_size=64)
        h1, s1 = mlstm._mlstm_cuda(q[:, :, :77], k[:, :, :77], v[:, :, :77], ig[:, :, :77], fg[:, :, :77], None,
                                   mode="auto", chunk_size=64)
        h2, s2 = mlstm._mlstm_cuda(q[:, :, 77:], k[:, :, 77:], v[:, :, 77:], ig[:, :, 77:], fg[:, :, 77:], s1,
                                   mode="auto", chunk_size=64)
    assert rel_err(torch.cat([h1, h2], 2), h_all) <= 1e-5
    for a, b in zip(s2, s_all):
        assert rel_err(a, b) <= 1e-5


@pytest.mark.parametrize("Dqk,Dv", [(32, 32), (48, 80), (40, 64)])  # 40: not a multiple of 16, SIMT path
def test_mlstm_chunkwise_tensor_core_output_matches_simt(emulated, monkeypatch, Dqk, Dv):
    """bfloat16: the tensor-core output kernel (wmma, emulated) against the float32 SIMT one on the same
    inputs, and both against the float64 reference."""
    (q, k, v, ig, fg), state = chunk_inputs(2, 2, 100, Dqk, Dv, 1.0, True)
    args = [x.to(torch.bfloat16) for x in (q, k, v, ig, fg)]
    st = ops.MLSTMState(*state)
    with torch.no_grad():
        ref, ref_st = mlstm._mlstm_torch(*(x.double() for x in args), ops.MLSTMState(*(s.double() for s in state)),
                                         mode="chunkwise", chunk_size=64)
        h_tc, s_tc = mlstm._mlstm_cuda(*args, st, mode="auto", chunk_size=64)
        monkeypatch.setattr(mlstm_cuda, "SIMT_OUTPUT", True)
        h_simt, s_simt = mlstm._mlstm_cuda(*args, st, mode="auto", chunk_size=64)
    assert rel_err(h_tc, ref) <= 2e-2 and rel_err(h_simt, ref) <= 2e-2
    assert rel_err(h_tc, h_simt) <= 2e-2
    for a, b in zip(s_tc, s_simt):  # the state kernel is shared
        assert torch.equal(a, b)


@pytest.mark.parametrize("clip", [0.02, 10.0])
def test_slstm_kernels_recurrent_gradient_clip(emulated, clip):
    gx, R = make_inputs(B=3, T=30, H=2, Dh=32, r_scale=1.0)
    st0 = random_state(B=3, H=2, Dh=32)
    w = torch.randn(3, 30, 2, 32) * 10
    grads = []
    for fn in (slstm._slstm_torch, slstm._slstm_cuda):
        leaves = [gx.clone().requires_grad_(), R.clone().requires_grad_(), *(s.clone().requires_grad_() for s in st0)]
        h, st = fn(leaves[0], leaves[1], ops.SLSTMState(*leaves[2:]), forget="sigmoid", grad_clip=clip)
        ((h * w).sum() + st.h.sum()).backward()
        grads.append([x.grad for x in leaves])
    for name, a, b in zip(["gx", "R", "c0", "n0", "m0", "h0"], grads[1], grads[0]):
        assert rel_err(a, b, floor=1e-3 * grads[0][0].abs().max().item()) <= 1e-5, name
