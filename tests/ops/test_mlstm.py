import pytest
import torch

from tests.helpers import grad_errors, mlstm_oracle, rel_err
from xseq import ops

MODES = ["parallel", "chunkwise", "recurrent"]


def make_inputs(B=2, H=2, T=32, Dqk=16, Dv=8, gate_range=None, positive_qk=False, dtype=torch.float32, seed=None):
    g = torch.Generator().manual_seed(seed if seed is not None else torch.seed() % 2**31)
    q, k = torch.randn(B, H, T, Dqk, generator=g), torch.randn(B, H, T, Dqk, generator=g)
    if positive_qk:  # see STYLE: |N(0,1)| keeps n.q away from cancellation at extreme gates
        q, k = q.abs(), k.abs()
    v = torch.randn(B, H, T, Dv, generator=g)
    if gate_range is None:
        igate = torch.randn(B, H, T, generator=g)
        fgate = torch.randn(B, H, T, generator=g) + 2.0
    else:
        lo, hi = gate_range
        igate = torch.empty(B, H, T).uniform_(lo, hi, generator=g)
        fgate = torch.empty(B, H, T).uniform_(lo, hi, generator=g)
    return [x.to(dtype) for x in (q, k, v, igate, fgate)]


def random_state(B=2, H=2, Dqk=16, Dv=8):
    C = torch.randn(B, H, Dqk, Dv)
    n = torch.randn(B, H, Dqk).abs()
    m = torch.randn(B, H)
    return ops.MLSTMState(C, n, m)


def true_state(state):
    C, n, m = state
    return C.double() * m.double().exp()[..., None, None], n.double() * m.double().exp()[..., None]


def check_against_oracle(mode, inputs, state, tol, chunk_size=64, grad=True):
    leaves = [x.detach().clone().requires_grad_(grad) for x in inputs]
    st = None if state is None else ops.MLSTMState(state.C.clone().requires_grad_(grad),
                                                   state.n.clone().requires_grad_(grad), state.m.clone())
    h, final = ops.mlstm(*leaves, st, mode=mode, chunk_size=chunk_size)
    ref_leaves = [x.detach().double().requires_grad_(grad) for x in inputs]
    ref_state = {} if state is None else dict(C0=state.C.double().requires_grad_(grad),
                                              n0=state.n.double().requires_grad_(grad), m0=state.m.double())
    h_ref, C_ref, n_ref = mlstm_oracle(*ref_leaves, **ref_state)
    assert h.dtype == inputs[2].dtype
    assert rel_err(h, h_ref) <= tol, f"h: {rel_err(h, h_ref):.2e}"
    C_true, n_true = true_state(final)
    assert rel_err(C_true, C_ref) <= tol, f"C: {rel_err(C_true, C_ref):.2e}"
    assert rel_err(n_true, n_ref) <= tol, f"n: {rel_err(n_true, n_ref):.2e}"
    if not grad:
        return
    gh = torch.randn_like(h_ref)
    (h.double() * gh).sum().backward()
    (h_ref * gh).sum().backward()
    names = ["q", "k", "v", "igate", "fgate"]
    pairs = list(zip(names, leaves, ref_leaves))
    if state is not None:
        pairs += [("C0", st.C, ref_state["C0"]), ("n0", st.n, ref_state["n0"])]
    errors = grad_errors(pairs)
    if max(errors.values()) > tol:  # an ill-conditioned draw? float32 can't beat the rounding of its inputs
        floor = 16 * rounding_sensitivity(inputs, state, gh, pairs)
        assert max(errors.values()) <= floor, f"gradient errors {errors}, 16 x input-rounding sensitivity {floor:.2e}"


def rounding_sensitivity(inputs, state, gh, pairs, draws=3):
    """How far the exact (float64) gradients move when every input is perturbed by a relative 2^-24, the
    rounding of float32 storage: the accuracy no float32 computation can beat on this draw. Gradients that
    are sums of many cancelling terms (the gates' over all later steps) can sit near 1e-5 on a few draws in
    ten thousand; measured on 300 draws, our error stays within 6x of this sensitivity."""
    g = torch.Generator().manual_seed(0)

    def perturbed(x):
        x = x.detach().double()
        return (x * (1 + 2.0 ** -24 * torch.randn(x.shape, generator=g, dtype=torch.float64))).requires_grad_()

    worst = 0.0
    for _ in range(draws):
        leaves = [perturbed(x) for x in inputs]
        extra = {} if state is None else dict(C0=perturbed(state.C), n0=perturbed(state.n), m0=state.m.double())
        h, _, _ = mlstm_oracle(*leaves, **extra)
        (h * gh).sum().backward()
        moved = leaves + ([] if state is None else [extra["C0"], extra["n0"]])
        ref = [(name, moved_leaf, ref_leaf) for (name, _, ref_leaf), moved_leaf in zip(pairs, moved)]
        worst = max(worst, max(grad_errors(ref).values()))
    return worst


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("T", [1, 7, 64, 200, 512])
@pytest.mark.parametrize("with_state", [False, True])
def test_float32_matches_float64_oracle(mode, T, with_state):
    inputs = make_inputs(T=T)
    check_against_oracle(mode, inputs, random_state() if with_state else None, tol=1e-5)


@pytest.mark.parametrize("chunk_size", [1, 5, 16, 100])
def test_chunkwise_any_chunk_size(chunk_size):
    check_against_oracle("chunkwise", make_inputs(T=83), random_state(), tol=1e-5, chunk_size=chunk_size)


@pytest.mark.parametrize("mode", MODES)
def test_extreme_gates(mode):
    inputs = make_inputs(T=256, gate_range=(-50, 50), positive_qk=True)
    check_against_oracle(mode, inputs, None, tol=1e-4, chunk_size=32)


@pytest.mark.parametrize("mode", MODES)
def test_extreme_gates_with_state(mode):
    inputs = make_inputs(T=100, gate_range=(-50, 50), positive_qk=True)
    state = random_state()
    state = ops.MLSTMState(state.C, state.n, state.m * 30)
    check_against_oracle(mode, inputs, state, tol=1e-4, chunk_size=32)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("gate_range", [None, (-50, 50)])
def test_bfloat16(mode, gate_range):
    inputs = make_inputs(T=128, gate_range=gate_range, positive_qk=gate_range is not None, dtype=torch.bfloat16)
    h, state = ops.mlstm(*inputs, mode=mode, chunk_size=32)
    assert h.dtype == torch.bfloat16 and state.C.dtype == torch.float32
    h_ref, C_ref, _ = mlstm_oracle(*inputs)  # the oracle sees the same bf16-rounded values
    assert rel_err(h, h_ref) <= 2e-2
    assert rel_err(true_state(state)[0], C_ref) <= 2e-2
    leaves = [x.clone().requires_grad_() for x in inputs]
    h, _ = ops.mlstm(*leaves, mode=mode, chunk_size=32)
    h.float().sum().backward()
    assert all(x.grad is not None and x.grad.dtype == torch.bfloat16 and torch.isfinite(x.grad).all() for x in leaves)


@pytest.mark.parametrize("mode", MODES)
def test_gradcheck_float64(mode):
    q, k, v, ig, fg = (x.double().requires_grad_() for x in make_inputs(B=1, H=2, T=9, Dqk=3, Dv=2))
    C0, n0, m0 = (x.double() for x in random_state(B=1, H=2, Dqk=3, Dv=2))
    C0.requires_grad_()
    n0.requires_grad_()

    def f(q, k, v, ig, fg, C0, n0):
        h, (C, n, m) = ops.mlstm(q, k, v, ig, fg, (C0, n0, m0), mode=mode, chunk_size=4)
        scale = m.exp()  # the true state C * exp(m) is a smooth function of the inputs
        return h, C * scale[..., None, None], n * scale[..., None]

    assert torch.autograd.gradcheck(f, (q, k, v, ig, fg, C0, n0))


@pytest.mark.parametrize("modes", [("parallel", "parallel"), ("chunkwise", "chunkwise"), ("recurrent", "recurrent"),
                                   ("chunkwise", "recurrent"), ("parallel", "chunkwise")])
def test_continuation_equals_one_call(modes):
    inputs = make_inputs(T=150)
    leaves_full = [x.clone().requires_grad_() for x in inputs]
    h_full, s_full = ops.mlstm(*leaves_full, mode=modes[0], chunk_size=32)
    leaves = [x.clone().requires_grad_() for x in inputs]
    h1, s1 = ops.mlstm(*(x[:, :, :61] for x in leaves), mode=modes[0], chunk_size=32)
    h2, s2 = ops.mlstm(*(x[:, :, 61:] for x in leaves), s1, mode=modes[1], chunk_size=32)
    assert rel_err(torch.cat([h1, h2], 2), h_full) <= 1e-5
    for a, b in zip(s2, s_full):
        assert rel_err(a, b) <= 1e-5
    g = torch.randn_like(h_full)
    (h_full * g).sum().backward()
    (torch.cat([h1, h2], 2) * g).sum().backward()
    for a, b in zip(leaves, leaves_full):
        assert rel_err(a.grad, b.grad) <= 1e-5


def test_step_equals_sequence():
    q, k, v, ig, fg = make_inputs(T=20)
    h_seq, s_seq = ops.mlstm(q, k, v, ig, fg, mode="parallel")
    state, hs = None, []
    for t in range(20):
        h, state = ops.mlstm_step(q[:, :, t], k[:, :, t], v[:, :, t], ig[:, :, t], fg[:, :, t], state)
        hs.append(h)
    assert rel_err(torch.stack(hs, 2), h_seq) <= 1e-5
    for a, b in zip(state, s_seq):
        assert rel_err(a, b) <= 1e-5


def test_all_modes_same_final_state_representation():
    inputs = make_inputs(T=130)
    states = [ops.mlstm(*inputs, mode=m, chunk_size=32)[1] for m in MODES]
    for s in states[1:]:
        for a, b in zip(s, states[0]):
            assert rel_err(a, b) <= 1e-5


def test_fresh_state_has_minus_inf_stabiliser_and_reset_is_where_safe():
    inputs = make_inputs(T=5)
    _, s = ops.mlstm(*inputs)
    fresh = ops.mlstm_step(*(x[:, :, 0] for x in inputs))[1]
    assert torch.isfinite(fresh.m).all()
    reset = torch.tensor([True, False])
    m0 = torch.full_like(s.m, float("-inf"))
    m = torch.where(reset[:, None], m0, s.m)
    C = torch.where(reset[:, None, None, None], torch.zeros_like(s.C), s.C)
    n = torch.where(reset[:, None, None], torch.zeros_like(s.n), s.n)
    h, _ = ops.mlstm(*inputs, (C, n, m))
    h_fresh, _ = ops.mlstm(*inputs)
    h_cont, _ = ops.mlstm(*inputs, s)
    assert torch.isfinite(h).all()
    assert rel_err(h[0], h_fresh[0]) <= 1e-6 and rel_err(h[1], h_cont[1]) <= 1e-6


def bad(name):
    return pytest.raises(ValueError, match=name)


def test_bad_inputs():
    q, k, v, ig, fg = make_inputs(T=8)
    with bad("k"):
        ops.mlstm(q, k[:, :, :7], v, ig, fg)
    with bad("v"):
        ops.mlstm(q, k, v[:, :1], ig, fg)
    with bad("igate"):
        ops.mlstm(q, k, v, ig[..., None], fg)
    with bad("fgate"):
        ops.mlstm(q, k, v, ig, fg[:, :, :3])
    with bad("q"):
        ops.mlstm(q[0], k, v, ig, fg)
    with bad("q must be a floating"):
        ops.mlstm(q.long(), k, v, ig, fg)
    with bad("v contains 1 NaN"):
        v2 = v.clone()
        v2[0, 0, 3, 1] = float("nan")
        ops.mlstm(q, k, v2, ig, fg)
    with bad("igate contains"):
        ops.mlstm(q, k, v, ig.clone().fill_(float("inf")), fg)
    with bad("state.C"):
        ops.mlstm(q, k, v, ig, fg, (torch.zeros(2, 2, 16, 9), torch.zeros(2, 2, 16), torch.zeros(2, 2)))
    with bad("state.m"):
        ops.mlstm(q, k, v, ig, fg, (torch.zeros(2, 2, 16, 8), torch.zeros(2, 2, 16), torch.zeros(2, 3)))
    with bad("state.m contains"):
        ops.mlstm(q, k, v, ig, fg, (torch.zeros(2, 2, 16, 8), torch.zeros(2, 2, 16), torch.full((2, 2), float("nan"))))
    with bad("state must be None or a tuple"):
        ops.mlstm(q, k, v, ig, fg, torch.zeros(3))
    with bad("mode"):
        ops.mlstm(q, k, v, ig, fg, mode="fast")
    with bad("chunk_size"):
        ops.mlstm(q, k, v, ig, fg, chunk_size=0)
    with bad("backend"):
        ops.mlstm(q, k, v, ig, fg, backend="nope")
    with bad("T >= 1"):
        ops.mlstm(*(x[:, :, :0] for x in (q, k, v, ig, fg)))
    with bad("k"):
        ops.mlstm_step(q[:, :, 0], k[:, :, 0, :3], v[:, :, 0], ig[:, :, 0], fg[:, :, 0])
