"""A low-overhead inference step for XLSTMEncoder on CPU: one numba-compiled call per block.

The PyTorch step runs a few dozen small ops per block, each paying dispatcher and allocation overhead
(tens of microseconds per op on a small CPU), so a step of a small model costs milliseconds. Here each
block's whole step (norms, projections, causal conv, gates, cell update, per-head norm, output, residual)
is one compiled function over numpy views of the block's own parameters (no copies: in-place training
updates and load_state_dict are seen at once). It is used for small batches of float32 in inference
(no autograd, eval mode or no dropout); everything else takes the PyTorch step. The two agree to float
rounding (tests/nn/test_fast_step.py).
"""
from __future__ import annotations

import math

import numba
import numpy as np
import torch
from tensordict import TensorDict

# reassociation lets reductions vectorise; no 'nnan'/'ninf': the stabiliser m is -inf in a fresh state
_FM = {"reassoc", "contract", "nsz", "arcp"}
_NJ = dict(cache=True, nogil=True, fastmath=_FM)
MAX_BATCH = 16  # above this the PyTorch step's batched matrix products win


@numba.njit(**_NJ)
def _linear(x, W, out):
    """out (B, O) = x (B, I) @ W (O, I)^T."""
    B, I = x.shape
    O = W.shape[0]
    for b in range(B):
        for o in range(O):
            acc = 0.0
            for i in range(I):
                acc += x[b, i] * W[o, i]
            out[b, o] = acc


@numba.njit(**_NJ)
def _layernorm(x, w, eps, out):
    """LayerNorm over the last axis of (B, N) with a weight and no bias."""
    B, N = x.shape
    for b in range(B):
        mu = 0.0
        for i in range(N):
            mu += x[b, i]
        mu /= N
        var = 0.0
        for i in range(N):
            d = x[b, i] - mu
            var += d * d
        inv = 1.0 / math.sqrt(var / N + eps)
        for i in range(N):
            out[b, i] = (x[b, i] - mu) * inv * w[i]


@numba.njit(**_NJ)
def _headnorm(h, w, H, eps, out):
    """Per-head LayerNorm of (B, H*D) with a weight (MultiHeadNorm)."""
    B, N = h.shape
    D = N // H
    for b in range(B):
        for hh in range(H):
            s = hh * D
            mu = 0.0
            for i in range(D):
                mu += h[b, s + i]
            mu /= D
            var = 0.0
            for i in range(D):
                d = h[b, s + i] - mu
                var += d * d
            inv = 1.0 / math.sqrt(var / D + eps)
            for i in range(D):
                out[b, s + i] = (h[b, s + i] - mu) * inv * w[s + i]


@numba.njit(**_NJ)
def _conv_step(x, state, w, bias, out, new_state):
    """Causal depthwise conv, one step: window = [state (B, K-1, C), x], out = sum_k window[k] w[:, k] + bias."""
    B, C = x.shape
    K = w.shape[1]
    for b in range(B):
        for c in range(C):
            acc = bias[c]
            for k in range(K - 1):
                acc += state[b, k, c] * w[c, k]
            acc += x[b, c] * w[c, K - 1]
            out[b, c] = acc
        for k in range(K - 2):
            for c in range(C):
                new_state[b, k, c] = state[b, k + 1, c]
        if K > 1:
            for c in range(C):
                new_state[b, K - 2, c] = x[b, c]


@numba.njit(**_NJ)
def _headwise(x, W, out):
    """Block-diagonal linear: x (B, n*a) with W (n, a, c) -> out (B, n*c)."""
    B = x.shape[0]
    n, a, c = W.shape
    for bb in range(B):
        for blk in range(n):
            for j in range(c):
                acc = 0.0
                for i in range(a):
                    acc += x[bb, blk * a + i] * W[blk, i, j]
                out[bb, blk * c + j] = acc


@numba.njit(inline="always")
def _silu(v):
    return v / (1.0 + math.exp(-v))


@numba.njit(inline="always")
def _logsigmoid(v):
    if v >= 0:
        return -math.log1p(math.exp(-v))
    return v - math.log1p(math.exp(v))


@numba.njit(**_NJ)
def mlstm_block_step(x, ln_w, up_W, conv_w, conv_b, conv_state, q_W, k_W, v_W, ig_W, ig_b, fg_W, fg_b,
                     norm_w, skip, down_W, C, n, m):
    """One step of the mLSTM block (Figure 6) for x (B, d). Returns y, C, n, m, conv_state (all new)."""
    B, d = x.shape
    I = conv_w.shape[0]
    H = ig_W.shape[0]
    D = I // H
    dt = x.dtype
    xn = np.empty((B, d), dt)
    _layernorm(x, ln_w, 1e-5, xn)
    u = np.empty((B, 2 * I), dt)
    _linear(xn, up_W, u)
    x_inner = np.ascontiguousarray(u[:, :I])
    xc = np.empty((B, I), dt)
    conv_new = np.empty_like(conv_state)
    _conv_step(x_inner, conv_state, conv_w, conv_b, xc, conv_new)
    for b in range(B):
        for i in range(I):
            xc[b, i] = _silu(xc[b, i])
    qkv = np.empty((B, 3 * I), dt)
    _headwise(xc, q_W, qkv[:, :I])
    _headwise(xc, k_W, qkv[:, I:2 * I])
    _headwise(x_inner, v_W, qkv[:, 2 * I:])
    ig = np.empty((B, H), dt)
    fg = np.empty((B, H), dt)
    _linear(qkv, ig_W, ig)  # eq 13
    _linear(qkv, fg_W, fg)  # eq 14
    C_new = np.empty_like(C)
    n_new = np.empty_like(n)
    m_new = np.empty_like(m)
    h = np.empty((B, I), dt)
    scale = 1.0 / math.sqrt(D)
    for b in range(B):
        for hh in range(H):
            itil = ig[b, hh] + ig_b[hh]
            logf = _logsigmoid(fg[b, hh] + fg_b[hh])
            mp = m[b, hh]
            mn = max(logf + mp, itil)  # eq 46
            ii = math.exp(itil - mn)  # eq 47
            ff = math.exp(logf + mp - mn)  # eq 48
            m_new[b, hh] = mn
            s = hh * D
            den = 0.0
            for a in range(D):
                ka = qkv[b, I + s + a] * scale
                nn_ = ff * n[b, hh, a] + ii * ka  # eq 10
                n_new[b, hh, a] = nn_
                den += qkv[b, s + a] * nn_
            for c in range(D):
                h[b, s + c] = 0.0
            for a in range(D):
                ka = qkv[b, I + s + a] * scale * ii
                qa = qkv[b, s + a]
                for c in range(D):
                    val = ff * C[b, hh, a, c] + ka * qkv[b, 2 * I + s + c]  # eq 9
                    C_new[b, hh, a, c] = val
                    h[b, s + c] += qa * val  # C^T q
            bound = max(abs(den), math.exp(-mn))  # eq 11, stabilised
            for c in range(D):
                h[b, s + c] /= bound
    hn = np.empty((B, I), dt)
    _headnorm(h, norm_w, H, 1e-5, hn)
    for b in range(B):
        for i in range(I):
            hn[b, i] = (hn[b, i] + skip[i] * xc[b, i]) * _silu(u[b, I + i])  # skip, output gate swish(z)
    y = np.empty((B, d), dt)
    _linear(hn, down_W, y)
    for b in range(B):
        for i in range(d):
            y[b, i] += x[b, i]
    return y, C_new, n_new, m_new, conv_new


@numba.njit(**_NJ)
def slstm_block_step(x, ln_w, has_conv, conv_w, conv_b, conv_state, W_if, W_zo, bias, R, exp_forget, norm_w,
                     ffn_ln_w, ffn_up, ffn_down, c, n, m, h):
    """One step of the sLSTM block (Figure 5) for x (B, d). Returns y, c, n, m, h, conv_state (all new)."""
    B, d = x.shape
    H = R.shape[1]
    Dh = R.shape[2]
    dt = x.dtype
    xn = np.empty((B, d), dt)
    _layernorm(x, ln_w, 1e-5, xn)
    conv_new = np.empty_like(conv_state)
    if has_conv:
        xc = np.empty((B, d), dt)
        _conv_step(xn, conv_state, conv_w, conv_b, xc, conv_new)
        for b in range(B):
            for i in range(d):
                xc[b, i] = _silu(xc[b, i])
    else:
        xc = xn
    c_new = np.empty_like(c)
    n_new = np.empty_like(n)
    m_new = np.empty_like(m)
    h_new = np.empty_like(h)
    pre = np.empty(4 * Dh, dt)
    for b in range(B):
        for hh in range(H):
            s = hh * Dh
            for g in range(4):
                src = xc if g < 2 else xn
                W = W_if[g] if g < 2 else W_zo[g - 2]
                o = g * Dh
                for e in range(Dh):
                    pre[o + e] = bias[g, hh, e]
                for a in range(Dh):  # row updates over e: contiguous, vectorised
                    xa_ = src[b, s + a]
                    ha = h[b, hh, a]
                    for e in range(Dh):
                        pre[o + e] += xa_ * W[hh, a, e] + ha * R[g, hh, a, e]  # eqs 31-34
            for e in range(Dh):
                itil, ftil, ztil, otil = pre[e], pre[Dh + e], pre[2 * Dh + e], pre[3 * Dh + e]
                logf = ftil if exp_forget else _logsigmoid(ftil)
                mp = m[b, hh, e]
                mn = max(logf + mp, itil)  # eq 46
                ii = math.exp(itil - mn)  # eq 47
                ff = math.exp(logf + mp - mn)  # eq 48
                cc = ff * c[b, hh, e] + ii * math.tanh(ztil)
                nn_ = ff * n[b, hh, e] + ii
                c_new[b, hh, e] = cc
                n_new[b, hh, e] = nn_
                m_new[b, hh, e] = mn
                h_new[b, hh, e] = (1.0 / (1.0 + math.exp(-otil))) * (cc / nn_)
    hn = np.empty((B, d), dt)
    _headnorm(h_new.reshape(B, d), norm_w, H, 1e-5, hn)
    x1 = np.empty((B, d), dt)
    for b in range(B):
        for i in range(d):
            x1[b, i] = x[b, i] + hn[b, i]
    _layernorm(x1, ffn_ln_w, 1e-5, xn)
    F = ffn_down.shape[1]
    u = np.empty((B, 2 * F), dt)
    _linear(xn, ffn_up, u)
    g_ = np.empty((B, F), dt)
    for b in range(B):
        for i in range(F):
            gv = u[b, i]
            g_[b, i] = 0.5 * gv * (1.0 + math.erf(gv / math.sqrt(2.0))) * u[b, F + i]  # gelu(gate) * up
    y = np.empty((B, d), dt)
    _linear(g_, ffn_down, y)
    for b in range(B):
        for i in range(d):
            y[b, i] += x1[b, i]
    return y, c_new, n_new, m_new, h_new, conv_new


@numba.njit(**_NJ)
def final_norm(x, w):
    out = np.empty_like(x)
    _layernorm(x, w, 1e-5, out)
    return out


def _v(t: torch.Tensor) -> np.ndarray:
    return t.detach().numpy()


def state_dict_of(blocks: dict, batch_size: int) -> TensorDict:
    """A TensorDict {block_i: {name: tensor}} built without per-leaf validation (the shapes are ours)."""
    bs = torch.Size([batch_size])
    make = getattr(TensorDict, "_new_unsafe", None)
    if make is None:  # pragma: no cover - older tensordict
        return TensorDict(blocks, batch_size=bs)
    return make({k: make(v, batch_size=bs) for k, v in blocks.items()}, batch_size=bs)


class FastStep:
    """Compiled step of an XLSTMEncoder; see the module docstring. `usable(x)` says whether it applies."""

    def __init__(self, encoder):
        from .mlstm_block import MLSTMBlock

        self.encoder = encoder
        self.kinds = ["m" if isinstance(b, MLSTMBlock) else "s" for b in encoder.blocks]
        # where every parameter lives, looked up afresh at each call (cheap dict reads, unlike parameters()),
        # so that replaced tensors (.to(), load_state_dict(assign=True)) are noticed
        self._slots = [(mod, name) for mod in encoder.modules() for name, p in mod._parameters.items() if p is not None]
        self._weights, self._ptrs, self._ok = None, None, False

    def __getstate__(self):  # numpy views of another process's tensors are no use: rebuilt on first call
        return {**self.__dict__, "_weights": None, "_ptrs": None, "_ok": False, "_last": None}

    def usable(self, x: torch.Tensor) -> bool:
        enc = self.encoder
        if (x.device.type != "cpu" or x.dtype != torch.float32 or x.shape[0] > MAX_BATCH
                or torch.is_grad_enabled() or (enc.training and enc.config.dropout > 0)):
            return False
        params = [mod._parameters[name] for mod, name in self._slots]
        ptrs = tuple(p.data_ptr() for p in params)
        if ptrs != self._ptrs:  # first call, or parameters moved or replaced: check them, take new views
            self._ptrs = ptrs
            self._ok = all(p.dtype == torch.float32 and p.device.type == "cpu" for p in params)
            if self._ok:
                self._weights = [self._block_weights(b, k) for b, k in zip(enc.blocks, self.kinds)]
                self._norm = _v(enc.norm.weight)
        return self._ok

    @staticmethod
    def _block_weights(blk, kind):
        L = blk.layer
        if kind == "m":
            return (_v(blk.norm.weight), _v(L.up.weight), _v(L.conv.weight), _v(L.conv.bias), _v(L.q_proj.weight),
                    _v(L.k_proj.weight), _v(L.v_proj.weight), _v(L.igate.weight), _v(L.igate.bias),
                    _v(L.fgate.weight), _v(L.fgate.bias), _v(L.norm.weight), _v(L.skip), _v(L.down.weight))
        has_conv = L.conv is not None
        conv_w = _v(L.conv.weight) if has_conv else np.zeros((1, 1), np.float32)
        conv_b = _v(L.conv.bias) if has_conv else np.zeros(1, np.float32)
        return (_v(blk.norm.weight), has_conv, conv_w, conv_b, _v(L.W_if), _v(L.W_zo), _v(L.bias), _v(L.R),
                L.cfg.forget == "exp", _v(L.norm.weight), _v(blk.ffn_norm.weight), _v(blk.ffn.up.weight),
                _v(blk.ffn.down.weight))

    def _arrays(self, state: TensorDict) -> list:
        """Per block, the numpy views of its state in the kernels' argument order. The state this object
        returned last time is recognised and its arrays reused (the usual case: a stream feeding it back)."""
        last = self.__dict__.get("_last")
        if last is not None and last[0] is state:
            return last[1]
        out = []
        for i, kind in enumerate(self.kinds):
            s = state[f"block_{i}"]
            if kind == "m":
                out.append((_v(s["conv"]), _v(s["C"]), _v(s["n"]), _v(s["m"])))
            else:
                conv = _v(s["conv"]) if "conv" in s.keys() else np.zeros((state.batch_size[0], 1, 1), np.float32)
                out.append((conv, _v(s["c"]), _v(s["n"]), _v(s["m"]), _v(s["h"])))
        return out

    def __call__(self, x: torch.Tensor, state: TensorDict):
        """Call only after usable(x) returned True."""
        xa = x.numpy()
        new, arrays = {}, []
        for i, (kind, w, a) in enumerate(zip(self.kinds, self._weights, self._arrays(state))):
            if kind == "m":
                xa, C, n, m, conv = mlstm_block_step(xa, *w[:4], a[0], *w[4:], a[1], a[2], a[3])
                arrays.append((conv, C, n, m))
                new[f"block_{i}"] = {"C": torch.from_numpy(C), "n": torch.from_numpy(n), "m": torch.from_numpy(m),
                                     "conv": torch.from_numpy(conv)}
            else:
                xa, c, n, m, h, conv = slstm_block_step(xa, w[0], w[1], w[2], w[3], a[0], *w[4:], *a[1:])
                arrays.append((conv, c, n, m, h))
                entry = {"c": torch.from_numpy(c), "n": torch.from_numpy(n), "m": torch.from_numpy(m),
                         "h": torch.from_numpy(h)}
                if w[1]:
                    entry["conv"] = torch.from_numpy(conv)
                new[f"block_{i}"] = entry
        out = state_dict_of(new, x.shape[0])
        self._last = (out, arrays)
        return torch.from_numpy(final_norm(xa, self._norm)), out
