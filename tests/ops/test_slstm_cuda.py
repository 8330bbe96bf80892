"""The fused CUDA sLSTM (csrc/cuda/slstm_kernels.cu) against the PyTorch reference on the same device:
outputs, every final state and the gradients of gx, R and all four initial state tensors, on fresh random
inputs, float32 and bfloat16, extreme gates, odd sizes (B = 1, B across batch tiles, T = 1, head sizes that
are not powers of two, up to 256), the recurrent gradient clip. The same checks run on the CPU through the
emulator in test_cuda_emulated.py."""
import pytest
import torch

from tests.ops import cuda_checks as checks
from xseq import ops
from xseq.ops import cuda_ext as _cuda_ext

pytestmark = pytest.mark.gpu
CUDA = torch.device("cuda")


@pytest.fixture(scope="module", autouse=True)
def built():
    """A failed build fails these tests: backend="cuda" would otherwise fall back to the reference (with a
    warning) and compare it with itself."""
    _cuda_ext.load("slstm")


@pytest.fixture(autouse=True, params=["clusters", "clusters-split", "block-per-head"])
def layout(request):
    """Every kernel layout: thread-block clusters (compute capability 9.0+; each step's cluster barrier whole
    or split into arrive and wait) and one block per head."""
    ext = _cuda_ext.load("slstm")
    ext.use_clusters(request.param != "block-per-head")
    ext.split_barrier(request.param == "clusters-split")
    yield request.param
    ext.use_clusters(True)
    ext.split_barrier(False)


def backend(name):
    def fn(gx, R, state, *, forget, grad_clip=None):
        return ops.slstm(gx, R, state, forget=forget, grad_clip=grad_clip, backend=name)
    return fn


@pytest.mark.parametrize("forget", ["sigmoid", "exp"])
@pytest.mark.parametrize("B,T,H,Dh", [(1, 1, 1, 32), (3, 70, 2, 48), (9, 33, 4, 64), (2, 40, 1, 128),
                                      (2, 17, 2, 256)])
@pytest.mark.parametrize("gate_range", [None, (-50, 50)])
def test_cuda_matches_reference(forget, B, T, H, Dh, gate_range):
    checks.slstm_matches_reference(backend("cuda"), backend("torch"), CUDA, B, T, H, Dh, forget, gate_range)


@pytest.mark.parametrize("clip", [0.02, 10.0])
def test_cuda_recurrent_gradient_clip(clip):
    checks.slstm_matches_reference(backend("cuda"), backend("torch"), CUDA, 3, 60, 2, 64, grad_clip=clip,
                                   r_scale=1.0, w_scale=10.0)


@pytest.mark.parametrize("gate_range", [None, (-50, 50)])
def test_cuda_bfloat16(gate_range):
    checks.slstm_bfloat16(backend("cuda"), CUDA, 5, 128, 2, 64, gate_range)


def test_cuda_continuation_and_no_grad():
    checks.slstm_carries_state(backend("cuda"), CUDA, split=20)
