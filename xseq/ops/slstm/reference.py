"""Plain PyTorch sLSTM, written to be read beside the paper (Sec. 2, App. B.2 eqs 28-34 and 46-48).

Heads have block-diagonal recurrent weights R (memory mixing within a head only). The loop over time is
the reference; fused kernels must match it. The stabiliser m is detached: h does not depend on it
(eqs 51-55)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..state import SLSTMState

FORGET = ("sigmoid", "exp")


def zero_state(gx: torch.Tensor) -> SLSTMState:
    B, H, Dh = gx.shape[0], gx.shape[-2], gx.shape[-1]
    z = gx.new_zeros(B, H, Dh)
    return SLSTMState(z, z.clone(), torch.full_like(z, float("-inf")), z.clone())


class _ClipRecurrentGrad(torch.autograd.Function):
    """Identity forward; backward clamps the gradient to [-clip, clip] elementwise (App. B.4: "we clip the
    magnitude of delta^R_{h_t} to 10"): applied to h_{t-1} where it enters R h_{t-1}, so only the gradient
    that reaches h through the recurrent weights is clipped."""

    @staticmethod
    def forward(ctx, h, clip: float):
        ctx.clip = clip
        return h.view_as(h)

    @staticmethod
    def backward(ctx, g):
        return g.clamp(-ctx.clip, ctx.clip), None


def slstm_step(gx: torch.Tensor, R: torch.Tensor, state: SLSTMState, forget: str = "sigmoid",
               grad_clip: float | None = None):
    """One step. gx: (B, 4, H, Dh) input parts W x + b in gate order (i, f, z, o); R: (4, H, Dh, Dh).
    grad_clip: clamp the gradient reaching h_{t-1} through R (None: no clipping).
    Returns h (B, H, Dh) and the new SLSTMState."""
    c, n, m, h = state
    h_r = h if grad_clip is None else _ClipRecurrentGrad.apply(h, grad_clip)
    # eqs 31-34: pre-activations = W x + b (given) + R h_{t-1}, headwise
    pre = gx + torch.einsum("bhd,ghde->bghe", h_r, R)
    itil, ftil, ztil, otil = pre.unbind(dim=1)
    logf = F.logsigmoid(ftil) if forget == "sigmoid" else ftil  # eq 6: log of sigmoid OR exp forget gate
    m_new = torch.maximum(logf + m, itil).detach()  # eq 46
    i = torch.exp(itil - m_new)  # eq 47
    f = torch.exp(logf + m - m_new)  # eq 48
    z = torch.tanh(ztil)  # eq 4
    o = torch.sigmoid(otil)  # eq 7
    c = f * c + i * z  # eq 1 (stabilised cell state, eq 49)
    n = f * n + i  # eq 2 (stabilised normaliser, eq 50)
    h = o * (c / n)  # eq 3
    return h, SLSTMState(c, n, m_new, h)


def slstm_recurrent(gx: torch.Tensor, R: torch.Tensor, state: SLSTMState, forget: str = "sigmoid",
                    grad_clip: float | None = None):
    """gx: (B, T, 4, H, Dh). Returns h (B, T, H, Dh) and the final SLSTMState."""
    hs = []
    for gx_t in gx.unbind(1):  # unbound once, see mlstm_ref.mlstm_recurrent
        h, state = slstm_step(gx_t, R, state, forget, grad_clip)
        hs.append(h)
    return torch.stack(hs, dim=1), state
