"""Chunkwise mLSTM: linear in T. The sequence is cut into chunks of L steps; the state (C, n, m) is carried
from chunk to chunk by the recurrence (eqs 9-10, one step per chunk), and inside each chunk the output is the
parallel form (eqs 76-83) plus the contribution of the state the chunk started from. Same stabiliser m as
the step-by-step recurrence, so every mode returns the same final state."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..state import MLSTMState
from .reference import segsum


def mlstm_chunkwise(q, k, v, igate, fgate, state: MLSTMState, chunk_size: int):
    """q, k: (B, H, T, Dqk) (k pre-scaled); v: (B, H, T, Dv); gates (B, H, T). Returns h, MLSTMState."""
    T = q.shape[2]
    n_full = (T // chunk_size) * chunk_size
    outs = []
    if n_full:
        h, state = _chunks(q[:, :, :n_full], k[:, :, :n_full], v[:, :, :n_full], igate[:, :, :n_full],
                           fgate[:, :, :n_full], state, chunk_size)
        outs.append(h)
    if n_full < T:  # the remainder is one shorter chunk
        h, state = _chunks(q[:, :, n_full:], k[:, :, n_full:], v[:, :, n_full:], igate[:, :, n_full:],
                           fgate[:, :, n_full:], state, T - n_full)
        outs.append(h)
    return torch.cat(outs, dim=2) if len(outs) > 1 else outs[0], state


def _chunks(q, k, v, igate, fgate, state: MLSTMState, L: int):
    B, H, T, Dqk = q.shape
    Dv = v.shape[-1]
    NC = T // L
    q = q.reshape(B, H, NC, L, Dqk)
    k = k.reshape(B, H, NC, L, Dqk)
    v = v.reshape(B, H, NC, L, Dv)
    ig = igate.reshape(B, H, NC, L)
    logf = F.logsigmoid(fgate).reshape(B, H, NC, L)

    S = segsum(logf)  # (B, H, NC, L, L): log decay from step j to step t inside a chunk
    a = torch.cumsum(logf, dim=-1)  # log decay from the chunk's incoming state to step t
    g = a[..., -1]  # log decay over the whole chunk
    to_end = S[..., -1, :] + ig  # log weight of step j's k v^T in the chunk's outgoing state

    # 1) what each chunk adds to the state, under a chunk-local stabiliser (all chunks at once)
    loc = to_end.max(dim=-1).values.detach()
    w = torch.exp(to_end - loc.unsqueeze(-1)).unsqueeze(-1)
    C_add = (k * w).transpose(-1, -2) @ v  # (B, H, NC, Dqk, Dv)
    n_add = (k * w).sum(dim=-2)  # (B, H, NC, Dqk)

    # 2) carry the state across chunks: eqs 9-10 and 46-48 with one "step" per chunk
    # (unbind once: indexing chunk c inside the loop would make the backward fill a full-size zero
    # gradient per chunk, quadratic in T)
    C, n, m = state
    C_in, n_in, m_in = [], [], []
    for g_c, loc_c, C_c, n_c in zip(g.unbind(-1), loc.unbind(-1), C_add.unbind(2), n_add.unbind(2)):
        C_in.append(C)
        n_in.append(n)
        m_in.append(m)
        m_new = torch.maximum(g_c + m, loc_c).detach()
        f = torch.exp(g_c + m - m_new)
        i = torch.exp(loc_c - m_new)
        C = f[..., None, None] * C + i[..., None, None] * C_c
        n = f.unsqueeze(-1) * n + i.unsqueeze(-1) * n_c
        m = m_new
    C_in = torch.stack(C_in, dim=2)  # (B, H, NC, Dqk, Dv)
    n_in = torch.stack(n_in, dim=2)  # (B, H, NC, Dqk)
    m_in = torch.stack(m_in, dim=2)  # (B, H, NC)

    # 3) outputs: intra-chunk parallel form (eqs 76-83) + the incoming state's contribution
    Dtil = S + ig.unsqueeze(-2)
    state_logw = a + m_in.unsqueeze(-1)
    m_row = torch.maximum(Dtil.max(dim=-1).values, state_logw).detach()
    Ct = (q @ k.transpose(-1, -2)) * torch.exp(Dtil - m_row.unsqueeze(-1))
    w0 = torch.exp(state_logw - m_row)
    num = Ct @ v + w0.unsqueeze(-1) * (q @ C_in)
    den = Ct.sum(dim=-1) + w0 * (q @ n_in.unsqueeze(-1)).squeeze(-1)
    h = num / torch.maximum(den.abs(), torch.exp(-m_row)).unsqueeze(-1)
    return h.reshape(B, H, T, Dv), MLSTMState(C, n, m)
