"""The CUDA mLSTM kernels on a device: the fused step (csrc/cuda/mlstm_kernels.cu) against the PyTorch step over
many steps from a fresh and from a carried state, float32 and bfloat16, extreme gates, odd head sizes; and the
chunkwise forward and backward (csrc/cuda/mlstm_chunk_kernels.cu) against the PyTorch chunkwise form, float32
and bfloat16, with and without an initial state, T not a multiple of the chunk. The same checks run on the CPU
through the emulator in test_cuda_emulated.py."""
import pytest
import torch

from tests.helpers import rel_err
from tests.ops import cuda_checks as checks
from xseq import ops
from xseq.ops import cuda_ext as _cuda_ext

pytestmark = pytest.mark.gpu
CUDA = torch.device("cuda")


@pytest.fixture(scope="module", autouse=True)
def built():
    """A failed build fails these tests: backend="cuda" would otherwise fall back to the reference (with a
    warning) and compare it with itself."""
    _cuda_ext.load("mlstm")


def step_backend(name):
    def fn(q, k, v, igate, fgate, state):
        return ops.mlstm_step(q, k, v, igate, fgate, state, backend=name)
    return fn


@pytest.fixture(params=["one-walk", "two-level"])
def states(request):
    """The chunk states from one walk over the chunks per head, or from the two-level kernels."""
    ext = _cuda_ext.load("mlstm")
    ext.two_level_states(request.param == "two-level")
    yield request.param
    ext.two_level_states(False)


def seq_backend(name, **kw):
    def fn(q, k, v, igate, fgate, state):
        return ops.mlstm(q, k, v, igate, fgate, state, backend=name, **kw)
    return fn


@pytest.mark.parametrize("B,H,Dqk,Dv", [(1, 1, 16, 16), (3, 4, 64, 48), (2, 2, 256, 256), (1, 2, 96, 512)])
@pytest.mark.parametrize("gate_scale", [1.0, 30.0])
def test_cuda_step_matches_torch_step(B, H, Dqk, Dv, gate_scale):
    checks.mlstm_step_matches_reference(step_backend("cuda"), step_backend("torch"), CUDA, B, H, Dqk, Dv,
                                        gate_scale, T=40)


def test_cuda_step_bfloat16_and_sequence_agreement():
    q, k, v, ig, fg = checks.step_inputs(2, 4, 64, 64, 32, 1.0, torch.bfloat16, CUDA)
    with torch.no_grad():
        h_seq, s_seq = ops.mlstm(q.float(), k.float(), v.float(), ig.float(), fg.float(), backend="torch")
        s = None
        for t in range(32):
            h, s = ops.mlstm_step(q[:, :, t], k[:, :, t], v[:, :, t], ig[:, :, t], fg[:, :, t], s, backend="cuda")
            assert h.dtype == torch.bfloat16
            assert rel_err(h, h_seq[:, :, t]) <= 2e-2, t
    assert rel_err(s.C, s_seq.C) <= 1e-4


def test_cuda_step_leaves_the_given_state_alone_and_defers_to_autograd():
    q, k, v, ig, fg = (x[:, :, 0] for x in checks.step_inputs(2, 2, 32, 32, 1, 1.0, device=CUDA))
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
@pytest.mark.parametrize("with_state", [False, True])
def test_cuda_chunkwise_matches_reference(states, B, H, T, Dqk, Dv, gate_scale, with_state):
    refs = [seq_backend("torch", mode="chunkwise"), seq_backend("torch", mode="recurrent")]
    checks.chunkwise_matches_reference(seq_backend("cuda"), refs, CUDA, B, H, T, Dqk, Dv, gate_scale, with_state)


@pytest.mark.parametrize("Dqk", [64, 40])  # tensor-core output kernel, and the SIMT one (Dqk not a multiple of 16)
def test_cuda_chunkwise_bfloat16(states, Dqk):
    inputs, _ = checks.chunk_inputs(2, 2, 300, Dqk, 64, 1.0, False, CUDA)
    inputs = [x.to(torch.bfloat16) for x in inputs]
    weights = [torch.randn(2, 2, 300, 64, device=CUDA), torch.zeros(2, 2, Dqk, 64, device=CUDA),
               torch.zeros(2, 2, Dqk, device=CUDA)]
    ref = checks.run_chunkwise(seq_backend("torch", mode="chunkwise"), inputs, None, weights, torch.float64)
    h, st, grads = checks.run_chunkwise(seq_backend("cuda"), inputs, None, weights, torch.bfloat16)
    assert h.dtype == torch.bfloat16 and st[0].dtype == torch.float32
    assert rel_err(h, ref[0]) <= 2e-2
    for name, g, r in zip(["q", "k", "v", "igate", "fgate"], grads, ref[2]):
        assert g.dtype == torch.bfloat16 and rel_err(g, r) <= 5e-2, name
