"""The fused CUDA mLSTM step (csrc/cuda/mlstm_kernels.cu) against the PyTorch step on the same device, over
many steps from a fresh and from a carried state, float32 and bfloat16, extreme gates, odd head sizes."""
import pytest
import torch

from xseq import ops
from tests.helpers import rel_err

pytestmark = pytest.mark.gpu
CUDA = torch.device("cuda")


def inputs(B, H, Dqk, Dv, T, gate_scale, dtype):
    g = torch.Generator(device="cuda").manual_seed(torch.seed() % 2**31)
    q, k = (torch.randn(B, H, T, Dqk, device=CUDA, generator=g) for _ in range(2))
    v = torch.randn(B, H, T, Dv, device=CUDA, generator=g)
    ig, fg = (torch.randn(B, H, T, device=CUDA, generator=g) * gate_scale for _ in range(2))
    return [x.to(dtype) for x in (q, k, v, ig, fg)]


@pytest.mark.parametrize("B,H,Dqk,Dv", [(1, 1, 16, 16), (3, 4, 64, 48), (2, 2, 256, 256), (1, 2, 96, 512)])
@pytest.mark.parametrize("gate_scale", [1.0, 30.0])
def test_cuda_step_matches_torch_step(B, H, Dqk, Dv, gate_scale):
    """Against a float64 step: within 2e-5, or 5x the float32 PyTorch step's error where that is larger (with
    extreme gates the normaliser n^T q can nearly cancel, and both lose digits alike, summed in other orders)."""
    q, k, v, ig, fg = inputs(B, H, Dqk, Dv, 40, gate_scale, torch.float32)
    s_t = s_c = s_d = None
    with torch.no_grad():
        for t in range(40):
            args = (q[:, :, t], k[:, :, t], v[:, :, t], ig[:, :, t], fg[:, :, t])
            h_t, s_t = ops.mlstm_step(*args, s_t, backend="torch")
            h_c, s_c = ops.mlstm_step(*args, s_c, backend="cuda")
            h_d, s_d = ops.mlstm_step(*(x.double() for x in args), s_d, backend="torch")
            assert rel_err(h_c, h_d) <= max(2e-5, 5 * rel_err(h_t, h_d)), t
    for name, a, b, d in zip("Cnm", s_c, s_t, s_d):
        assert a.dtype == torch.float32 and rel_err(a, d) <= max(2e-5, 5 * rel_err(b, d)), name


def test_cuda_step_bfloat16_and_sequence_agreement():
    q, k, v, ig, fg = inputs(2, 4, 64, 64, 32, 1.0, torch.bfloat16)
    with torch.no_grad():
        h_seq, s_seq = ops.mlstm(q.float(), k.float(), v.float(), ig.float(), fg.float(), backend="torch")
        s = None
        for t in range(32):
            h, s = ops.mlstm_step(q[:, :, t], k[:, :, t], v[:, :, t], ig[:, :, t], fg[:, :, t], s, backend="cuda")
            assert h.dtype == torch.bfloat16
            assert rel_err(h, h_seq[:, :, t]) <= 2e-2, t
    assert rel_err(s.C, s_seq.C) <= 1e-4


def test_cuda_step_leaves_the_given_state_alone_and_defers_to_autograd():
    q, k, v, ig, fg = (x[:, :, 0] for x in inputs(2, 2, 32, 32, 1, 1.0, torch.float32))
    _, s0 = ops.mlstm_step(q, k, v, ig, fg, backend="torch")
    before = [x.clone() for x in s0]
    with torch.no_grad():
        ops.mlstm_step(q, k, v, ig, fg, s0, backend="cuda")
    for a, b in zip(s0, before):
        assert torch.equal(a, b)
    qg = q.clone().requires_grad_()
    h, _ = ops.mlstm_step(qg, k, v, ig, fg, s0, backend="cuda")  # autograd: the PyTorch step
    h.sum().backward()
    assert qg.grad is not None and torch.isfinite(qg.grad).all()


@pytest.mark.parametrize("B,H,T,Dqk,Dv", [(1, 1, 1, 16, 16), (2, 3, 200, 64, 64), (1, 2, 130, 128, 128),
                                          (2, 1, 300, 256, 256)])
@pytest.mark.parametrize("gate_scale", [1.0, 10.0])
def test_cuda_chunkwise_matches_reference(B, H, T, Dqk, Dv, gate_scale):
    """The chunkwise kernels (outputs, final state, gradients of every input and of the initial state) against
    the PyTorch chunkwise form in float64, with the bars of test_cuda_emulated.py (same kernels, on the CPU)."""
    from tests.ops.test_cuda_emulated import chunk_inputs

    inputs, state = chunk_inputs(B, H, T, Dqk, Dv, gate_scale, True)
    inputs, state = [x.to(CUDA) for x in inputs], [s.to(CUDA) for s in state]
    weights = [torch.randn(B, H, T, Dv, device=CUDA), torch.randn(B, H, Dqk, Dv, device=CUDA),
               torch.randn(B, H, Dqk, device=CUDA)]

    def run(backend, dtype):
        leaves = [x.to(dtype).requires_grad_() for x in inputs + state]
        h, st = ops.mlstm(*leaves[:5], ops.MLSTMState(*leaves[5:]), backend=backend)
        ((h * weights[0].to(dtype)).sum() + (st.C * weights[1].to(st.C.dtype)).sum()
         + (st.n * weights[2].to(st.n.dtype)).sum()).backward()
        return [h.detach(), *(s.detach() for s in st)], [x.grad for x in leaves]

    (o_ref, g_ref), (o_32, g_32), (o_c, g_c) = run("torch", torch.float64), run("torch", torch.float32), run(
        "cuda", torch.float32)
    for name, a, b, r in zip(["h", "C", "n", "m"], o_c, o_32, o_ref):
        assert rel_err(a, r) <= max(5e-5, 10 * rel_err(b, r)), name
    scale = max(g.abs().max().item() for g in g_ref)
    for name, a, b, r in zip(["q", "k", "v", "igate", "fgate", "C0", "n0", "m0"], g_c, g_32, g_ref):
        floor = (1.0 if name.endswith("gate") or name == "m0" or gate_scale > 1 else 1e-2) * scale
        assert rel_err(a, r, floor) <= max(5e-5, 10 * rel_err(b, r, floor)), name
