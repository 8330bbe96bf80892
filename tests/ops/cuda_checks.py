"""Checks of the CUDA kernels against the reference, shared by the emulated runs on the CPU
(test_cuda_emulated.py) and the gpu-marked runs on a device (test_slstm_cuda.py, test_mlstm_cuda.py).
`ours` and `ref` are backend functions with the signature of xseq.ops.slstm._slstm_torch (sLSTM),
xseq.ops.mlstm._mlstm_step_torch (mLSTM step) or xseq.ops.mlstm._mlstm_torch (mLSTM sequence)."""
from __future__ import annotations

import torch

from tests.helpers import rel_err
from tests.ops.test_slstm import make_inputs, random_state
from xseq import ops
from xseq.ops.slstm import reference as slstm_ref

# ---- sLSTM --------------------------------------------------------------------------------------------------------

def run_slstm(fn, gx, R, st0, forget, w, grad_clip=None):
    leaves = [gx.clone().requires_grad_(), R.clone().requires_grad_(), *(s.clone().requires_grad_() for s in st0)]
    h, st = fn(leaves[0], leaves[1], ops.SLSTMState(*leaves[2:]), forget=forget, grad_clip=grad_clip)
    ((h.float() * w[0]).sum() + (st.c * w[1]).sum() + (st.n * w[2]).sum() + st.h.sum()).backward()
    return h.detach(), [s.detach() for s in st], [x.grad for x in leaves]


def slstm_matches_reference(ours, ref, device, B, T, H, Dh, forget="sigmoid", gate_range=None, grad_clip=None,
                            r_scale=0.5, w_scale=1.0):
    """Outputs, every final state and the gradients of gx, R and all four initial state tensors (float32)."""
    gx, R = (x.to(device) for x in make_inputs(B=B, T=T, H=H, Dh=Dh, gate_range=gate_range, r_scale=r_scale))
    st0 = [s.to(device) for s in random_state(B=B, H=H, Dh=Dh)]
    w = [torch.randn(B, T, H, Dh, device=device) * w_scale, torch.randn(B, H, Dh, device=device),
         torch.randn(B, H, Dh, device=device)]
    h_t, s_t, g_t = run_slstm(ref, gx, R, st0, forget, w, grad_clip)
    h_c, s_c, g_c = run_slstm(ours, gx, R, st0, forget, w, grad_clip)
    assert rel_err(h_c, h_t) <= 1e-5
    for name, a, b in zip("cnmh", s_c, s_t):
        assert rel_err(a, b) <= 1e-5, name
    # floors of the two cancelling gradients, as in test_slstm.test_fused_matches_reference_everywhere
    floors = {"m0": ((g_t[2] * st0[0]).abs() + (g_t[3] * st0[1]).abs()).max().item(),
              "h0": g_t[0].abs().max().item() * R.abs().sum(dim=(0, 3)).max().item()}
    for name, a, b in zip(["gx", "R", "c0", "n0", "m0", "h0"], g_c, g_t):
        assert b.abs().max() > 0, name
        assert rel_err(a, b, floor=floors.get(name, 0.0)) <= 1e-5, name


def slstm_bfloat16(ours, device, B, T, H, Dh, gate_range=None):
    gx, R = make_inputs(B=B, T=T, H=H, Dh=Dh, gate_range=gate_range, dtype=torch.bfloat16)
    gx, R = gx.to(device).requires_grad_(), R.to(device).requires_grad_()
    h, state = ours(gx, R, None, forget="sigmoid")
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


def slstm_carries_state(ours, device, split=11):
    gx, R = (x.to(device) for x in make_inputs(B=4, T=30, H=2, Dh=32))
    with torch.no_grad():
        h_all, s_all = ours(gx, R, None, forget="sigmoid")
        h1, s1 = ours(gx[:, :split], R, None, forget="sigmoid")
        h2, s2 = ours(gx[:, split:], R, s1, forget="sigmoid")
    assert rel_err(torch.cat([h1, h2], 1), h_all) <= 1e-6
    for a, b in zip(s2, s_all):
        assert rel_err(a, b) <= 1e-6


# ---- mLSTM step -----------------------------------------------------------------------------------------------------

def step_inputs(B, H, Dqk, Dv, T, gate_scale, dtype=torch.float32, device="cpu"):
    q, k = torch.randn(B, H, T, Dqk, device=device), torch.randn(B, H, T, Dqk, device=device)
    v = torch.randn(B, H, T, Dv, device=device)
    ig, fg = (torch.randn(B, H, T, device=device) * gate_scale for _ in range(2))
    return [x.to(dtype) for x in (q, k, v, ig, fg)]


def mlstm_step_matches_reference(ours, ref, device, B, H, Dqk, Dv, gate_scale, T=12):
    """Against a float64 step: within 2e-5, or 5x the float32 PyTorch step's error where that is larger (with
    extreme gates the normaliser n^T q can nearly cancel, and both lose digits alike, summed in other orders)."""
    q, k, v, ig, fg = step_inputs(B, H, Dqk, Dv, T, gate_scale, device=device)
    s_t = s_c = s_d = None
    with torch.no_grad():
        for t in range(T):
            args = (q[:, :, t], k[:, :, t], v[:, :, t], ig[:, :, t], fg[:, :, t])
            h_t, s_t = ref(*args, s_t)
            h_c, s_c = ours(*args, s_c)
            h_d, s_d = ref(*(x.double() for x in args), s_d)
            assert rel_err(h_c, h_d) <= max(2e-5, 5 * rel_err(h_t, h_d)), t
    for name, a, b, d in zip("Cnm", s_c, s_t, s_d):
        assert a.dtype == torch.float32 and rel_err(a, d) <= max(2e-5, 5 * rel_err(b, d)), name


# ---- mLSTM chunkwise --------------------------------------------------------------------------------------------

def chunk_inputs(B, H, T, Dqk, Dv, gate_scale, with_state, device="cpu"):
    q, k = torch.randn(B, H, T, Dqk, device=device), torch.randn(B, H, T, Dqk, device=device)
    v = torch.randn(B, H, T, Dv, device=device)
    ig = torch.randn(B, H, T, device=device) * gate_scale
    fg = torch.randn(B, H, T, device=device) * gate_scale + 2.0
    state = None
    if with_state:
        state = [torch.randn(B, H, Dqk, Dv, device=device), torch.randn(B, H, Dqk, device=device),
                 torch.randn(B, H, device=device)]
    return [q, k, v, ig, fg], state


def run_chunkwise(fn, inputs, state, weights, dtype=None):
    leaves = [x.clone().to(dtype or x.dtype).requires_grad_() for x in inputs]
    st_leaves = None if state is None else [s.clone().to(dtype or s.dtype).requires_grad_() for s in state]
    h, st = fn(*leaves, None if st_leaves is None else ops.MLSTMState(*st_leaves))
    ((h * weights[0].to(h.dtype)).sum() + (st.C * weights[1].to(st.C.dtype)).sum()
     + (st.n * weights[2].to(st.n.dtype)).sum()).backward()
    grads = [x.grad for x in leaves + (st_leaves or [])]
    return h.detach(), [s.detach() for s in st], grads


def chunkwise_matches_reference(ours, refs, device, B, H, T, Dqk, Dv, gate_scale, with_state):
    """Outputs, final state and the gradients of q, k, v, both gates and the initial state, against the
    reference in float64 (the first of `refs`): within 5e-5, or within 10x the largest error of the reference
    forms in `refs` run in float32 where that is larger. Several float32 forms (the chunkwise and the recurrent
    one sum in different orders) because where the normaliser cancels, every float32 form's error is rounding
    times the cancellation, and one form alone can be lucky: at the worst of 300 draws the chunkwise form's q
    gradient was 2.5e-6 from float64, the recurrent form's 1.7e-5 and the kernels' 6.9e-5. The SIMT kernels
    sum serially where torch's GEMMs sum in blocks; bugs found so far were 1e-3 and above (a race between column
    blocks gave 1.6e-3 and 0.12)."""
    inputs, state = chunk_inputs(B, H, T, Dqk, Dv, gate_scale, with_state, device)
    weights = [torch.randn(B, H, T, Dv, device=device), torch.randn(B, H, Dqk, Dv, device=device),
               torch.randn(B, H, Dqk, device=device)]
    ref64 = run_chunkwise(refs[0], inputs, state, weights, torch.float64)
    ref32s = [run_chunkwise(ref, inputs, state, weights) for ref in refs]
    got = run_chunkwise(ours, inputs, state, weights)

    def check(a, bs, r, name, floor=0.0):
        envelope = max(rel_err(b, r, floor) for b in bs)
        assert rel_err(a, r, floor) <= max(5e-5, 10 * envelope), name

    check(got[0], [b[0] for b in ref32s], ref64[0], "h")
    for i, name in enumerate("Cnm"):
        check(got[1][i], [b[1][i] for b in ref32s], ref64[1][i], name)
    names = ["q", "k", "v", "igate", "fgate", "C0", "n0", "m0"]
    scale = max(g.abs().max().item() for g in ref64[2])
    # gradients that must not vanish (at T = 1 from an empty state h = sign(q.k) v unless the lower bound of the
    # denominator wins, and the forget gate has nothing to forget; with extreme gates every row can be one such
    # term)
    flows = {"v", "igate"} | ({"C0", "n0", "m0", "fgate"} if with_state else set()) | (
        {"q", "k", "fgate"} if T > 1 and gate_scale == 1.0 else set())
    for i, (name, a, r) in enumerate(zip(names, got[2], ref64[2])):
        assert r.abs().max() > 0 or name not in flows, name
        # measured against the scale of all the gradients of the backward pass: with extreme gates many entries
        # are tiny differences of large terms (the gate gradients come from sums of q.dq and k.dk over the
        # sequence, as in the official kernels), so a float32 rounding of those terms is what is measurable
        cancelling = name.endswith("gate") or name == "m0" or gate_scale > 1.0
        check(a, [b[2][i] for b in ref32s], r, name, floor=(1.0 if cancelling else 1e-2) * scale)
