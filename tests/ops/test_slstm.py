import pytest
import torch

from tests.helpers import grad_errors, rel_err, slstm_oracle
from xseq import ops
from xseq.ops.slstm import reference as slstm_ref

BACKENDS = ["torch", "numba"]  # the reference and the fused CPU loop, each against the float64 oracle


def make_inputs(B=2, T=32, H=2, Dh=8, gate_range=None, r_scale=0.3, dtype=torch.float32, seed=None):
    g = torch.Generator().manual_seed(seed if seed is not None else torch.seed() % 2**31)
    if gate_range is None:
        gx = torch.randn(B, T, 4, H, Dh, generator=g)
        gx[:, :, 1] += 2.0  # forget gates mostly open, as after the paper's bias init
    else:
        gx = torch.empty(B, T, 4, H, Dh).uniform_(*gate_range, generator=g)
    R = torch.randn(4, H, Dh, Dh, generator=g) * r_scale / Dh**0.5
    return gx.to(dtype), R.to(dtype)


def random_state(B=2, H=2, Dh=8):
    c = torch.randn(B, H, Dh)
    n = torch.rand(B, H, Dh) + 1.0
    return ops.SLSTMState(c, n, torch.randn(B, H, Dh), torch.randn(B, H, Dh).tanh())


def check(gx, R, state, forget, tol, oracle="literal", backend="auto"):
    gx_l, R_l = gx.clone().requires_grad_(), R.clone().requires_grad_()
    st = None if state is None else ops.SLSTMState(state.c.clone().requires_grad_(), state.n.clone().requires_grad_(),
                                                   state.m.clone(), state.h.clone().requires_grad_())
    h, final = ops.slstm(gx_l, R_l, st, forget=forget, backend=backend)
    gx_r, R_r = gx.double().requires_grad_(), R.double().requires_grad_()
    if state is None:
        st_r = None
    else:
        st_r = ops.SLSTMState(state.c.double().requires_grad_(), state.n.double().requires_grad_(),
                              state.m.double(), state.h.double().requires_grad_())
    if oracle == "literal":
        kw = {} if st_r is None else dict(c0=st_r.c, n0=st_r.n, m0=st_r.m, h0=st_r.h)
        h_ref, c_ref, n_ref, _ = slstm_oracle(gx_r, R_r, forget, **kw)
        c_ours, n_ours = final.c.double() * final.m.double().exp(), final.n.double() * final.m.double().exp()
        state_tol = tol
    else:  # the stabilised reference in float64, for exp forget gates whose literal product overflows
        h_ref, ref_state = slstm_ref.slstm_recurrent(gx_r, R_r, st_r or slstm_ref.zero_state(gx_r), forget)
        c_ref, n_ref, c_ours, n_ours = ref_state.c, ref_state.n, final.c, final.n
        assert rel_err(final.m, ref_state.m) <= tol
        # m sums log f over time, and float32 adds |m| * 2^-24 of rounding at each of the T steps: how the
        # true state c e^m is split between c and m, and every f = exp(log f + m_{t-1} - m_t) of the backward
        # pass, carry that random walk (h = o c / n does not: it is checked at tol)
        state_tol = max(tol, 2.0**-24 * ref_state.m.abs().max().item() * gx.shape[1] ** 0.5)
    assert h.dtype == gx.dtype and final.c.dtype == torch.float32
    assert rel_err(h, h_ref) <= tol, f"h {rel_err(h, h_ref):.2e}"
    assert rel_err(c_ours, c_ref) <= state_tol, f"c {rel_err(c_ours, c_ref):.2e}"
    assert rel_err(n_ours, n_ref) <= state_tol, f"n {rel_err(n_ours, n_ref):.2e}"
    assert rel_err(final.h, h_ref[:, -1]) <= tol
    g = torch.randn_like(h_ref)
    (h.double() * g).sum().backward()
    (h_ref * g).sum().backward()
    pairs = [("gx", gx_l, gx_r), ("R", R_l, R_r)]
    if state is not None:
        pairs += [(f"state.{k}", getattr(st, k), getattr(st_r, k)) for k in ("c", "n", "h")]
    errors = grad_errors(pairs)
    assert max(errors.values()) <= state_tol, f"gradient errors {errors}"


@pytest.mark.parametrize("forget", ["sigmoid", "exp"])
@pytest.mark.parametrize("T", [1, 17, 512])
@pytest.mark.parametrize("with_state", [False, True])
@pytest.mark.parametrize("backend", BACKENDS)
def test_float32_matches_float64_oracle(forget, T, with_state, backend):
    gx, R = make_inputs(T=T)
    if forget == "exp":
        gx[:, :, 1] -= 2.5  # keep the literal (unstabilised) exp forget product inside float64's range
    check(gx, R, random_state() if with_state else None, forget, tol=1e-5, backend=backend)


@pytest.mark.parametrize("H,Dh", [(1, 4), (4, 16), (3, 32)])
@pytest.mark.parametrize("backend", BACKENDS)
def test_head_layouts(H, Dh, backend):
    gx, R = make_inputs(B=3, T=40, H=H, Dh=Dh)
    check(gx, R, random_state(B=3, H=H, Dh=Dh), "sigmoid", tol=1e-5, backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_extreme_gates_sigmoid_forget(backend):
    gx, R = make_inputs(T=256, gate_range=(-50, 50), r_scale=0.0)
    check(gx, R, None, "sigmoid", tol=1e-4, backend=backend)


@pytest.mark.parametrize("forget", ["sigmoid", "exp"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_extreme_gates_against_stabilised_float64(forget, backend):
    gx, R = make_inputs(T=256, gate_range=(-50, 50), r_scale=0.5)
    check(gx, R, random_state(), forget, tol=1e-4, oracle="stabilised", backend=backend)


@pytest.mark.parametrize("gate_range", [None, (-50, 50)])
@pytest.mark.parametrize("backend", BACKENDS)
def test_bfloat16(gate_range, backend):
    gx, R = make_inputs(T=128, gate_range=gate_range, dtype=torch.bfloat16)
    h, state = ops.slstm(gx, R, backend=backend)
    assert h.dtype == torch.bfloat16 and state.c.dtype == torch.float32
    h_ref, _ = slstm_ref.slstm_recurrent(gx.double(), R.double(), slstm_ref.zero_state(gx.double()))
    assert rel_err(h, h_ref) <= 2e-2


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradcheck_float64(backend):
    gx, R = (x.double().requires_grad_() for x in make_inputs(B=1, T=6, H=2, Dh=3))
    c0, n0, m0, h0 = (x.double() for x in random_state(B=1, H=2, Dh=3))
    c0.requires_grad_()
    h0.requires_grad_()

    def f(gx, R, c0, h0, forget):
        h, (c, n, m, _) = ops.slstm(gx, R, (c0, n0, m0, h0), forget=forget, backend=backend)
        return h, c * m.exp(), n * m.exp()

    assert torch.autograd.gradcheck(lambda *a: f(*a, "sigmoid"), (gx, R, c0, h0))
    # exp forget gates around 1 keep the true state c * exp(m) in a range finite differences can resolve
    gx_exp = (gx.detach() - 2.0 * (torch.arange(4) == 1).view(1, 1, 4, 1, 1)).requires_grad_()
    assert torch.autograd.gradcheck(lambda *a: f(*a, "exp"), (gx_exp, R, c0, h0))


def test_continuation_equals_one_call():
    gx, R = make_inputs(T=90)
    gx_a, R_a = gx.clone().requires_grad_(), R.clone().requires_grad_()
    h_full, s_full = ops.slstm(gx_a, R_a)
    gx_b, R_b = gx.clone().requires_grad_(), R.clone().requires_grad_()
    h1, s1 = ops.slstm(gx_b[:, :37], R_b)
    h2, s2 = ops.slstm(gx_b[:, 37:], R_b, s1)
    assert rel_err(torch.cat([h1, h2], 1), h_full) <= 1e-6
    for a, b in zip(s2, s_full):
        assert rel_err(a, b) <= 1e-6
    g = torch.randn_like(h_full)
    (h_full * g).sum().backward()
    (torch.cat([h1, h2], 1) * g).sum().backward()
    assert rel_err(gx_b.grad, gx_a.grad) <= 1e-6 and rel_err(R_b.grad, R_a.grad) <= 1e-6


def test_step_equals_sequence():
    gx, R = make_inputs(T=12)
    h_seq, s_seq = ops.slstm(gx, R)
    state, hs = None, []
    for t in range(12):
        h, state = ops.slstm_step(gx[:, t], R, state)
        hs.append(h)
    assert rel_err(torch.stack(hs, 1), h_seq) <= 1e-6
    for a, b in zip(state, s_seq):
        assert rel_err(a, b) <= 1e-6


def bad(name):
    return pytest.raises(ValueError, match=name)


def test_bad_inputs():
    gx, R = make_inputs(T=5)
    with bad("gx"):
        ops.slstm(gx[:, :, :3], R)
    with bad("R"):
        ops.slstm(gx, R[:, :, :4])
    with bad("gx must be a floating"):
        ops.slstm(gx.int(), R)
    with bad("R contains"):
        ops.slstm(gx, R.clone().fill_(float("nan")))
    with bad("forget"):
        ops.slstm(gx, R, forget="tanh")
    with bad("state.n"):
        ops.slstm(gx, R, (torch.zeros(2, 2, 8), torch.zeros(2, 2, 7), torch.zeros(2, 2, 8), torch.zeros(2, 2, 8)))
    with bad("state must be None or a tuple"):
        ops.slstm(gx, R, (torch.zeros(2, 2, 8),))
    with bad("backend"):
        ops.slstm(gx, R, backend="cuda-magic")
    with bad("gx"):
        ops.slstm_step(gx, R)


@pytest.mark.parametrize("forget", ["sigmoid", "exp"])
@pytest.mark.parametrize("H,Dh", [(1, 8), (4, 16), (2, 64)])
@pytest.mark.parametrize("gate_range", [None, (-50, 50)])
def test_fused_matches_reference_everywhere(forget, H, Dh, gate_range):
    """The fused CPU loop against the PyTorch reference in float32: outputs, every final state (m too), and
    the gradients of gx, R and all four initial state tensors (m's through f_1 = exp(log f + m_0 - m_1))."""
    gx, R = make_inputs(B=3, T=70, H=H, Dh=Dh, gate_range=gate_range, r_scale=0.5)
    st0 = random_state(B=3, H=H, Dh=Dh)
    w_h, w_c, w_n = torch.randn(3, 70, H, Dh), torch.randn(3, H, Dh), torch.randn(3, H, Dh)
    results = {}
    for backend in BACKENDS:
        leaves = [gx.clone().requires_grad_(), R.clone().requires_grad_(), *(s.clone().requires_grad_() for s in st0)]
        h, st = ops.slstm(leaves[0], leaves[1], ops.SLSTMState(*leaves[2:]), forget=forget, backend=backend)
        ((h * w_h).sum() + (st.c * w_c).sum() + (st.n * w_n).sum() + st.h.sum()).backward()
        results[backend] = (h.detach(), [s.detach() for s in st], [x.grad for x in leaves])
    (h_t, s_t, g_t), (h_f, s_f, g_f) = results["torch"], results["numba"]
    assert rel_err(h_f, h_t) <= 1e-5
    # c and n are stored against the stabiliser m: where |m| is large (hundreds with exp forget gates of
    # U(-50, 50)), an ulp of m, 2^-24 |m| of relative size, is how far two float32 loops may split the same
    # state differently between c and m (h = o c / n is unaffected; measured: up to 0.4 of this bar over 1000
    # draws, and 1.5e-5 against a flat 1e-5 bar at |m| = 800)
    split_tol = max(1e-5, 2.0**-24 * s_t[2].abs().max().item())
    for name, a, b in zip("cnmh", s_f, s_t):
        assert rel_err(a, b) <= (split_tol if name in "cn" else 1e-5), name
    # the gradient into m0 is d(log f_1) = dc0 c0 + dn0 n0, two terms that cancel: measure it against their
    # size, not against what is left of them (with gates of U(-50, 50) that can be 1e-4 of it, and an ulp of
    # difference in any gate moves it by more than 1e-5 of itself, in float32, between any two implementations)
    m0_scale = ((g_t[2] * st0.c).abs() + (g_t[3] * st0.n).abs()).max().item()
    # dh0 = sum over gates g and units e of R[g, ., e] dpre_g,e(t=0), and dpre(t=0) is the gradient of gx[:, 0],
    # which is held to 1e-5 of the largest gx gradient (not of its own, often far smaller, size at t=0); so dh0
    # is held to what that allows: 1e-5 x max|d gx| x the largest row sum of |R| (measured before: 2% of fresh
    # draws at gates of U(-50, 50) left 3e-5 of dh0's own size)
    h0_scale = g_t[0].abs().max().item() * R.abs().sum(dim=(0, 3)).max().item()
    floors = {"m0": m0_scale, "h0": h0_scale}
    for name, a, b in zip(["gx", "R", "c0", "n0", "m0", "h0"], g_f, g_t):
        assert b.abs().max() > 0, name  # every gradient is exercised
        assert rel_err(a, b, floor=floors.get(name, 0.0)) <= 1e-5, name


def test_fused_keeps_nothing_for_backward_without_grad(monkeypatch):
    """Under torch.no_grad (inference with parameters that require grad) the fused loop does not store the
    per-step gates, c and n; with grad enabled it does, and the gradient is the reference's."""
    from xseq.ops.slstm import cpu as slstm_cpu

    kept = []
    apply = slstm_cpu._FusedSLSTM.apply
    monkeypatch.setattr(slstm_cpu._FusedSLSTM, "apply", lambda *a: kept.append(a[-1]) or apply(*a))
    gx, R = make_inputs(T=20)
    R.requires_grad_()
    with torch.no_grad():
        ops.slstm(gx, R, backend="numba")
    h, _ = ops.slstm(gx, R, backend="numba")
    assert kept == [False, True]
    h.sum().backward()
    R_t = R.detach().clone().requires_grad_()
    ops.slstm(gx, R_t, backend="torch")[0].sum().backward()
    assert rel_err(R.grad, R_t.grad) <= 1e-5


def test_fused_without_grad_and_fallback_warning(monkeypatch):
    import importlib

    slstm_mod = importlib.import_module("xseq.ops.slstm.cpu")
    gx, R = make_inputs(T=20)
    with torch.no_grad():
        h_f, _ = ops.slstm(gx, R, backend="numba")
    h_t, _ = ops.slstm(gx, R, backend="torch")
    assert rel_err(h_f, h_t) <= 1e-5

    from numba.core.errors import NumbaError

    def broken(*a, **k):
        raise NumbaError("no compiler here")

    monkeypatch.setattr(slstm_mod, "slstm_fused", broken)
    monkeypatch.setattr(slstm_mod, "_FUSED_BROKEN", None)
    with pytest.warns(RuntimeWarning, match="could not be compiled.*no compiler here"):
        h1, _ = ops.slstm(gx, R)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # one warning only; later calls go to the reference quietly
        h2, _ = ops.slstm(gx, R)
    assert torch.equal(h1, h_t) and torch.equal(h2, h_t)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_nonfinite_gx_is_reported(backend, bad):
    """The fused loop checks gx while it reads it (no separate pass); both backends name gx and the count."""
    gx, R = make_inputs(B=2, T=9, H=2, Dh=8)
    gx[1, 7, 2, 1, 3] = bad
    gx[0, 0, 0, 0, 0] = bad
    with pytest.raises(ValueError, match=r"gx contains 2 NaN or inf"):
        ops.slstm(gx, R, backend=backend)
    gx[1, 7, 2, 1, 3] = gx[0, 0, 0, 0, 0] = 3.0e38  # finite but large: its sum overflows, still not reported
    ops.slstm(gx, R, backend=backend)


def test_fused_call_leaves_torch_thread_count_alone():
    """numba's OpenMP layer shares the runtime with torch: a fused call must not change torch's setting."""
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        gx, R = make_inputs(B=2, T=9, H=2, Dh=8)
        gx.requires_grad_()
        h, _ = ops.slstm(gx, R, backend="numba")
        h.sum().backward()
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_recurrent_gradient_clip_reference():
    """App. B.4: the gradient reaching h_{t-1} through R is clamped; h's other uses are not. At T = 1 the
    initial h feeds only R h_0, so its gradient is exactly the clamped R^T dpre_0."""
    gx, R = make_inputs(B=2, T=1, H=2, Dh=8, r_scale=2.0)
    st0 = random_state(B=2, H=2, Dh=8)
    grads = {}
    for clip in (None, 0.05):
        h0 = st0.h.clone().requires_grad_()
        gxl = gx.clone().requires_grad_()
        h, _ = ops.slstm(gxl, R, ops.SLSTMState(st0.c, st0.n, st0.m, h0), grad_clip=clip, backend="torch")
        (h * 10).sum().backward()
        grads[clip] = (h0.grad, gxl.grad)
    assert grads[None][0].abs().max() > 0.05  # the clip bites
    assert torch.equal(grads[0.05][0], grads[None][0].clamp(-0.05, 0.05))
    assert torch.equal(grads[0.05][1], grads[None][1])  # at T = 1 nothing else passes through R


@pytest.mark.parametrize("clip", [0.02, 10.0])
def test_recurrent_gradient_clip_fused_matches_reference(clip):
    """Each float32 backend against the float64 reference with the same clip. Errors are measured the way
    grad_errors does: a clamped h0 gradient (|value| <= clip) is the difference of pre-clip terms of the size
    of the other gradients, so it carries their float32 rounding, not its own relative precision."""
    gx, R = make_inputs(B=3, T=40, H=2, Dh=16, r_scale=1.0)
    st0 = random_state(B=3, H=2, Dh=16)
    w = torch.randn(3, 40, 2, 16) * 10

    def grads(backend, dtype, clip):
        leaves = [x.clone().to(dtype).requires_grad_() for x in (gx, R, *st0)]
        h, st = ops.slstm(leaves[0], leaves[1], ops.SLSTMState(*leaves[2:]), grad_clip=clip, backend=backend)
        ((h * w.to(dtype)).sum() + st.h.sum()).backward()
        return leaves

    ref = grads("torch", torch.float64, clip)
    if clip < 1:
        unclipped = grads("torch", torch.float64, None)
        assert rel_err(ref[0].grad, unclipped[0].grad) > 1e-2  # the clip changes the result
    names = ["gx", "R", "c0", "n0", "m0", "h0"]
    for backend in BACKENDS:
        errors = grad_errors(list(zip(names, grads(backend, torch.float32, clip), ref)))
        assert max(errors.values()) <= 1e-5, (backend, errors)


def test_recurrent_gradient_clip_is_validated():
    gx, R = make_inputs(B=1, T=2, H=1, Dh=4)
    for bad_clip in (0, -1.0, "10", True):
        with pytest.raises(ValueError, match="grad_clip"):
            ops.slstm(gx, R, grad_clip=bad_clip)
