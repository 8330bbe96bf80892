"""Shared test helpers: error measures and literal float64 implementations of the cell equations."""
from __future__ import annotations

import math

import torch


def rel_err(actual: torch.Tensor, expected: torch.Tensor, floor: float = 0.0) -> float:
    """Max absolute difference relative to the largest reference magnitude (norm-wise relative error),
    or to `floor` where that is larger."""
    a, e = actual.detach().double(), expected.detach().double()
    assert a.shape == e.shape, (a.shape, e.shape)
    assert torch.isfinite(a).all(), "non-finite values in the result"
    return ((a - e).abs().max() / e.abs().max().clamp_min(max(floor, 1e-300))).item()


def grad_errors(pairs) -> dict[str, float]:
    """pairs: (name, ours, reference) leaves after backward. Each gradient is measured relative to its own
    scale, floored at 10% of the largest reference gradient of the same backward pass: a gradient that
    cancels to ~0 in exact arithmetic (e.g. d/dq of v (k.q)/|k.q|) has no relative accuracy to measure, only
    float rounding of the terms that cancel."""
    scale = max(ref.grad.abs().max().item() for _, _, ref in pairs)
    out = {}
    for name, ours, ref in pairs:
        assert ours.grad is not None, f"no gradient for {name}"
        out[name] = rel_err(ours.grad, ref.grad, floor=0.1 * scale)
    return out


def mlstm_oracle(q, k, v, igate, fgate, C0=None, n0=None, m0=None):
    """The issue's equations, literally, in float64, no stabiliser: C_t = f C + i k v^T, n_t = f n + i k,
    h_t = C_t^T q_t / max(|n_t^T q_t|, 1), k scaled by 1/sqrt(Dqk). Initial state in stabilised form."""
    q, k, v, igate, fgate = (x.double() for x in (q, k, v, igate, fgate))
    B, H, T, D = q.shape
    k = k / math.sqrt(D)
    if C0 is None:
        C = torch.zeros(B, H, D, v.shape[-1], dtype=torch.float64)
        n = torch.zeros(B, H, D, dtype=torch.float64)
    else:
        scale = torch.exp(m0.double())
        C, n = C0.double() * scale[..., None, None], n0.double() * scale[..., None]
    hs = []
    for t in range(T):
        i, f = torch.exp(igate[:, :, t]), torch.sigmoid(fgate[:, :, t])
        C = f[..., None, None] * C + i[..., None, None] * k[:, :, t, :, None] * v[:, :, t, None, :]
        n = f[..., None] * n + i[..., None] * k[:, :, t]
        den = (n * q[:, :, t]).sum(-1).abs().clamp_min(1.0)
        hs.append(torch.einsum("bhd,bhde->bhe", q[:, :, t], C) / den[..., None])
    return torch.stack(hs, 2), C, n


def slstm_oracle(gx, R, forget="sigmoid", c0=None, n0=None, m0=None, h0=None):
    """Eqs 28-34 literally in float64, no stabiliser. gx (B, T, 4, H, Dh), R (4, H, Dh, Dh)."""
    gx, R = gx.double(), R.double()
    B, T, _, H, Dh = gx.shape
    if c0 is None:
        c = torch.zeros(B, H, Dh, dtype=torch.float64)
        n, h = c.clone(), c.clone()
    else:
        scale = torch.exp(m0.double())
        c, n, h = c0.double() * scale, n0.double() * scale, h0.double()
    hs = []
    for t in range(T):
        pre = gx[:, t] + torch.einsum("bhd,ghde->bghe", h, R)
        i = torch.exp(pre[:, 0])
        f = torch.sigmoid(pre[:, 1]) if forget == "sigmoid" else torch.exp(pre[:, 1])
        z, o = torch.tanh(pre[:, 2]), torch.sigmoid(pre[:, 3])
        c = f * c + i * z
        n = f * n + i
        h = o * c / n
        hs.append(h)
    return torch.stack(hs, 1), c, n, h
