"""The fused CUDA sLSTM (csrc/cuda/slstm_kernels.cu) against the PyTorch reference on the same device:
outputs, every final state and the gradients of gx, R and all four initial state tensors, on fresh random
inputs, float32 and bfloat16, extreme gates, odd sizes (B = 1, B across batch tiles, T = 1, head sizes that
are not powers of two, up to 256)."""
import pytest
import torch

from xseq import ops
from xseq.ops import slstm_ref
from tests.helpers import rel_err
from tests.ops.test_slstm import make_inputs, random_state

pytestmark = pytest.mark.gpu
CUDA = torch.device("cuda")


def run(backend, gx, R, st0, forget, w):
    leaves = [gx.clone().requires_grad_(), R.clone().requires_grad_(), *(s.clone().requires_grad_() for s in st0)]
    h, st = ops.slstm(leaves[0], leaves[1], ops.SLSTMState(*leaves[2:]), forget=forget, backend=backend)
    ((h.float() * w[0]).sum() + (st.c * w[1]).sum() + (st.n * w[2]).sum() + st.h.sum()).backward()
    return h.detach(), [s.detach() for s in st], [x.grad for x in leaves]


@pytest.mark.parametrize("forget", ["sigmoid", "exp"])
@pytest.mark.parametrize("B,T,H,Dh", [(1, 1, 1, 32), (3, 70, 2, 48), (9, 33, 4, 64), (2, 40, 1, 128), (2, 17, 2, 256)])
@pytest.mark.parametrize("gate_range", [None, (-50, 50)])
def test_cuda_matches_reference(forget, B, T, H, Dh, gate_range):
    gx, R = make_inputs(B=B, T=T, H=H, Dh=Dh, gate_range=gate_range, r_scale=0.5)
    st0 = random_state(B=B, H=H, Dh=Dh)
    gx, R, st0 = gx.to(CUDA), R.to(CUDA), [s.to(CUDA) for s in st0]
    w = [torch.randn(B, T, H, Dh, device=CUDA), torch.randn(B, H, Dh, device=CUDA), torch.randn(B, H, Dh, device=CUDA)]
    (h_t, s_t, g_t), (h_c, s_c, g_c) = run("torch", gx, R, st0, forget, w), run("cuda", gx, R, st0, forget, w)
    assert rel_err(h_c, h_t) <= 1e-5
    for name, a, b in zip("cnmh", s_c, s_t):
        assert rel_err(a, b) <= 1e-5, name
    # floors of the two cancelling gradients, as in test_slstm.test_fused_matches_reference_everywhere
    floors = {"m0": ((g_t[2] * st0[0]).abs() + (g_t[3] * st0[1]).abs()).max().item(),
              "h0": g_t[0].abs().max().item() * R.abs().sum(dim=(0, 3)).max().item()}
    for name, a, b in zip(["gx", "R", "c0", "n0", "m0", "h0"], g_c, g_t):
        assert b.abs().max() > 0, name
        assert rel_err(a, b, floor=floors.get(name, 0.0)) <= 1e-5, name


@pytest.mark.parametrize("gate_range", [None, (-50, 50)])
def test_cuda_bfloat16(gate_range):
    gx, R = make_inputs(B=5, T=128, H=2, Dh=64, gate_range=gate_range, dtype=torch.bfloat16)
    gx, R = gx.to(CUDA).requires_grad_(), R.to(CUDA).requires_grad_()
    h, state = ops.slstm(gx, R, backend="cuda")
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


def test_cuda_continuation_and_no_grad():
    gx, R = (x.to(CUDA) for x in make_inputs(B=4, T=50, H=2, Dh=32))
    with torch.no_grad():
        h_all, s_all = ops.slstm(gx, R, backend="cuda")
        h1, s1 = ops.slstm(gx[:, :20], R, backend="cuda")
        h2, s2 = ops.slstm(gx[:, 20:], R, s1, backend="cuda")
    assert rel_err(torch.cat([h1, h2], 1), h_all) <= 1e-6
    for a, b in zip(s2, s_all):
        assert rel_err(a, b) <= 1e-6
