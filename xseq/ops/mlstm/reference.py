"""Plain PyTorch mLSTM, written to be read beside the paper (Beck et al. 2024, Sec. 2 and App. B.3).

Two forms of the same cell:
- `mlstm_parallel`: the stabilised parallel form, eqs 76-83, quadratic in T, extended with an incoming state;
- `mlstm_step`: one step of the recurrence, eqs 9-11 with the stabiliser of eqs 46-48.
Keys arrive already scaled by 1/sqrt(Dqk); everything runs in the dtype it is given (the caller upcasts).
The stabiliser m is detached: the outputs do not depend on it (App. B.2, eqs 51-55).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..state import MLSTMState


def segsum(logf: torch.Tensor) -> torch.Tensor:
    """log F of eq 68/98: (..., T) -> (..., T, T) with S[t, j] = sum_{k=j+1..t} logf_k for t >= j, -inf above.

    Summed per segment (not as a difference of two long cumulative sums) so that the log decay between
    two nearby steps keeps full precision however long the sequence is."""
    T = logf.shape[-1]
    ones = torch.ones(T, T, dtype=torch.bool, device=logf.device)
    x = logf.unsqueeze(-1).expand(*logf.shape, T)  # x[..., t, j] = logf_t
    x = x.masked_fill(~torch.tril(ones, diagonal=-1), 0.0)
    S = torch.cumsum(x, dim=-2)
    return S.masked_fill(~torch.tril(ones), float("-inf"))


def zero_state(q: torch.Tensor, v: torch.Tensor) -> MLSTMState:
    B, H, Dqk, Dv = q.shape[0], q.shape[1], q.shape[-1], v.shape[-1]
    C = q.new_zeros(B, H, Dqk, Dv)
    return MLSTMState(C, q.new_zeros(B, H, Dqk), q.new_full((B, H), float("-inf")))


def mlstm_parallel(q, k, v, igate, fgate, state: MLSTMState | None = None):
    """q, k: (B, H, T, Dqk); v: (B, H, T, Dv); igate, fgate: (B, H, T). Returns h (B, H, T, Dv), MLSTMState."""
    logf = F.logsigmoid(fgate)  # log f_t, sigmoid forget gate (eq 14)
    Dtil = segsum(logf) + igate.unsqueeze(-2)  # eq 76: log F + I~
    m = Dtil.max(dim=-1).values  # eq 77, row-wise max
    if state is not None:
        # the incoming state is one more "column": weight exp(sum_{k<=t} logf_k + m_0)
        state_logw = torch.cumsum(logf, dim=-1) + state.m.unsqueeze(-1)
        m = torch.maximum(m, state_logw)
    m = m.detach()
    Dp = torch.exp(Dtil - m.unsqueeze(-1))  # eq 78
    Ct = (q @ k.transpose(-1, -2)) * Dp  # eq 79
    b = Ct.sum(dim=-1)  # eq 80
    num = Ct @ v
    if state is not None:
        w0 = torch.exp(state_logw - m)
        b = b + w0 * (q @ state.n.unsqueeze(-1)).squeeze(-1)
        num = num + w0.unsqueeze(-1) * (q @ state.C)
    norm = torch.maximum(b.abs(), torch.exp(-m))  # eq 81
    h = num / norm.unsqueeze(-1)  # eqs 82-83

    # final state: the last row of the weight matrix applied to k v^T (eqs 9-10 summed up)
    w = Dp[..., -1, :].unsqueeze(-1)  # (B, H, T, 1)
    C = (k * w).transpose(-1, -2) @ v
    n = (k * w).sum(dim=-2)
    if state is not None:
        w0T = w0[..., -1]
        C = C + w0T[..., None, None] * state.C
        n = n + w0T[..., None] * state.n
    return h, MLSTMState(C, n, m[..., -1])


def mlstm_step(q, k, v, igate, fgate, state: MLSTMState):
    """One step. q, k: (B, H, Dqk); v: (B, H, Dv); igate, fgate: (B, H). Returns h (B, H, Dv), MLSTMState."""
    C, n, m = state
    logf = F.logsigmoid(fgate)
    m_new = torch.maximum(logf + m, igate).detach()  # eq 46
    i = torch.exp(igate - m_new)  # eq 47, stabilised input gate
    f = torch.exp(logf + m - m_new)  # eq 48, stabilised forget gate
    C = f[..., None, None] * C + i[..., None, None] * (k.unsqueeze(-1) * v.unsqueeze(-2))  # eq 9
    n = f.unsqueeze(-1) * n + i.unsqueeze(-1) * k  # eq 10
    num = (q.unsqueeze(-2) @ C).squeeze(-2)  # C^T q
    den = (q * n).sum(dim=-1)
    h = num / torch.maximum(den.abs(), torch.exp(-m_new)).unsqueeze(-1)  # eq 11, stabilised bound
    return h, MLSTMState(C, n, m_new)


def mlstm_recurrent(q, k, v, igate, fgate, state: MLSTMState):
    """The recurrence as a loop of `mlstm_step` over T. (Inputs are unbound once: indexing step t inside the
    loop would make the backward fill a full-size zero gradient per step, quadratic in T.)"""
    hs = []
    for q_t, k_t, v_t, i_t, f_t in zip(*(x.unbind(2) for x in (q, k, v, igate, fgate))):
        h, state = mlstm_step(q_t, k_t, v_t, i_t, f_t, state)
        hs.append(h)
    return torch.stack(hs, dim=2), state
