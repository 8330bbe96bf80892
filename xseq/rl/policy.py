"""Recurrent actor-critic: an encoder (xLSTM, nn.LSTM or MLP) per role or shared, an action head and a value
head, with the two faces of every xseq model: `step` (one env step, used while collecting and acting) and
`evaluate` (whole stored sequences in one parallel call, used by the PPO update).

The policy state is one TensorDict per env row: "actor" and (unless shared) "critic" encoder states,
with frame stacking "frames" (the last k normalised observations), and with an episode clock "t" (the step
index in the episode of the next observation). Rows are reset with nn.rows.where_rows
(torch.where, never a product with (1 - done): the stabilisers hold -inf in a fresh state, -inf * 0 is NaN).

`evaluate` honours episode starts inside a stored sequence without a Python loop over time: each env's
sequence is cut at its episode starts, the pieces are right-padded into a (pieces, longest, d) batch and run
in one call of the encoder, each piece starting from the stored state (the rollout's first piece of each
env) or from a fresh one (a piece that begins an episode); outputs at padded positions are dropped."""
from __future__ import annotations

import torch
from tensordict import TensorDict
from torch import nn

from ..nn.encoder import XLSTMEncoder
from ..nn.rows import where_rows
from .config import PPOConfig
from .spaces import ActionHead, linear


class XLSTMSeq(nn.Module):
    def __init__(self, in_dim: int, cfg: PPOConfig):
        super().__init__()
        self.embed = nn.Linear(in_dim, cfg.xlstm.d_model)
        self.enc = XLSTMEncoder(cfg.xlstm)
        self.out_dim = cfg.xlstm.d_model

    def init_state(self, B: int) -> TensorDict:
        return self.enc.init_state(B)

    def forward(self, x, state):
        return self.enc(self.embed(x), state)[0]

    def step(self, x, state):
        e = linear(x, self.embed)
        if torch.is_grad_enabled():
            return self.enc.step(e, state)
        return self.enc.step_unchecked(e, state)  # the compiled step for small batches


class LSTMSeq(nn.Module):
    """torch.nn.LSTM through the same code: the baseline the xLSTM is compared with."""

    def __init__(self, in_dim: int, cfg: PPOConfig):
        super().__init__()
        self.lstm = nn.LSTM(in_dim, cfg.hidden_size, batch_first=True)
        self.out_dim = cfg.hidden_size

    def init_state(self, B: int) -> TensorDict:
        z = torch.zeros(B, self.out_dim)
        return TensorDict({"h": z, "c": z.clone()}, batch_size=[B])

    def forward(self, x, state):
        return self.lstm(x, (state["h"][None].contiguous(), state["c"][None].contiguous()))[0]

    def step(self, x, state):
        y, (h, c) = self.lstm(x[:, None], (state["h"][None].contiguous(), state["c"][None].contiguous()))
        return y[:, 0], TensorDict({"h": h[0], "c": c[0]}, batch_size=[x.shape[0]])


class MLPSeq(nn.Module):
    """Feed-forward (no memory beyond frame stacking): the baseline that must fail on memory tasks."""

    def __init__(self, in_dim: int, cfg: PPOConfig):
        super().__init__()
        h = cfg.hidden_size
        self.net = nn.Sequential(nn.Linear(in_dim, h), nn.Tanh(), nn.Linear(h, h), nn.Tanh())
        self.out_dim = h

    def init_state(self, B: int) -> TensorDict:
        return TensorDict({}, batch_size=[B])

    def forward(self, x, state):
        return self.net(x)

    def step(self, x, state):
        return self.net(x), state


ENCODERS = {"xlstm": XLSTMSeq, "lstm": LSTMSeq, "mlp": MLPSeq}


def clock(t: torch.Tensor, freq: torch.Tensor) -> torch.Tensor:
    """Episode-clock features of step indices t (any shape): [sin(t w), cos(t w)] over the frequencies w, shape
    t.shape + (2 * len(w),). A shift in time is a fixed rotation of each (sin, cos) pair, so a linear map can
    turn the clock of one step into that of another (say, the step a card was shown)."""
    a = t[..., None].double() * freq  # in float64: the phase of a late step keeps all its digits
    return torch.cat([torch.sin(a), torch.cos(a)], dim=-1).float()


def clock_frequencies(features: int, horizon: float) -> torch.Tensor:
    """features / 2 frequencies (float64), geometric from 1 to 1 / horizon radians per step."""
    n = features // 2
    if n == 1:
        return torch.tensor([1.0 / horizon], dtype=torch.float64)
    return float(horizon) ** (-torch.arange(n, dtype=torch.float64) / (n - 1))


def _segments(episode_start: torch.Tensor):
    """episode_start (N, T) -> where each step goes in the padded batch of pieces: piece and position per
    flat step, the number of pieces S and their longest length L, each piece's env and whether it is fresh."""
    N, T = episode_start.shape
    starts = episode_start.clone()
    starts[:, 0] = True  # every env's rollout begins a piece
    flat = starts.reshape(-1)
    piece = torch.cumsum(flat.long(), 0) - 1
    idx = torch.arange(N * T)
    first = torch.cummax(torch.where(flat, idx, torch.zeros_like(idx)), 0).values
    pos = idx - first
    piece_first = idx[flat]
    return piece, pos, int(piece[-1]) + 1, int(pos.max()) + 1, piece_first // T, episode_start.reshape(-1)[piece_first]


class ActorCritic(nn.Module):
    def __init__(self, obs_dim: int, action_space, cfg: PPOConfig):
        super().__init__()
        self.obs_dim, self.k, self.nt = obs_dim, cfg.frame_stack, cfg.time_features
        self.register_buffer("freq", clock_frequencies(self.nt, cfg.time_horizon) if self.nt else torch.zeros(0),
                             persistent=False)
        make = ENCODERS[cfg.encoder]
        self.actor = make(obs_dim * self.k + self.nt, cfg)
        self.critic = None if cfg.shared else make(obs_dim * self.k + self.nt, cfg)
        self.head = ActionHead(action_space, self.actor.out_dim)
        self.value = nn.Linear(self.actor.out_dim, 1)
        nn.init.orthogonal_(self.value.weight, gain=1.0)
        nn.init.zeros_(self.value.bias)

    # ---- state ------------------------------------------------------------------------------------------
    def init_state(self, B: int, actor_only: bool = False) -> TensorDict:
        parts = {"actor": self.actor.init_state(B)}
        if self.critic is not None and not actor_only:
            parts["critic"] = self.critic.init_state(B)
        if self.k > 1:
            parts["frames"] = torch.zeros(B, self.k, self.obs_dim)
        if self.nt:
            parts["t"] = torch.zeros(B)
        return TensorDict(parts, batch_size=[B])

    def _begin(self, obs, state, episode_start):
        """Reset the rows that start an episode, push obs into the frame stack and read and advance the clock:
        (encoder input, state)."""
        if episode_start is not None and bool(episode_start.any()):
            fresh = self.init_state(obs.shape[0], actor_only="critic" not in state.keys())
            state = where_rows(episode_start, fresh, state)
        if self.k == 1 and not self.nt:
            return obs, state
        state, x = state.clone(recurse=False), obs
        if self.k > 1:
            state["frames"] = torch.cat([state["frames"][:, 1:], obs[:, None]], dim=1)
            x = state["frames"].flatten(1)
        if self.nt:
            x = torch.cat([x, clock(state["t"], self.freq)], dim=1)
            state["t"] = state["t"] + 1
        return x, state

    # ---- one step ---------------------------------------------------------------------------------------
    def step(self, obs, state, episode_start):
        """Collection: obs (B, obs_dim) normalised. Returns (distribution, value (B,), new state)."""
        x, state = self._begin(obs, state, episode_start)
        new = state.clone(recurse=False)
        feats, new["actor"] = self.actor.step(x, state["actor"])
        if self.critic is None:
            vfeats = feats
        else:
            vfeats, new["critic"] = self.critic.step(x, state["critic"])
        return self.head.dist(feats), self.value(vfeats)[:, 0], new

    def act(self, obs, state, episode_start):
        """Acting only (predict, evaluation): the actor's part of the state. Returns (distribution, state)."""
        x, state = self._begin(obs, state, episode_start)
        feats, actor = self.actor.step(x, state["actor"])
        parts = {k: v for k, v in state.items()}
        parts["actor"] = actor
        return self.head.dist(feats), TensorDict._new_unsafe(parts, batch_size=state.batch_size)

    def value_after(self, obs, state):
        """V of obs given the state after the previous step (no episode start): the bootstrap of a truncated
        episode from its final observation."""
        x, state = self._begin(obs, state, None)
        enc = self.critic if self.critic is not None else self.actor
        feats, _ = enc.step(x, state["critic" if self.critic is not None else "actor"])
        return self.value(feats)[:, 0]

    # ---- whole sequences ----------------------------------------------------------------------------------
    def evaluate(self, obs, actions, episode_start, state0):
        """obs (N, T, obs_dim), actions (N, T, a), episode_start (N, T) bool, state0: the state before step 0
        (episode starts not yet applied). Returns log-probabilities, entropies and values, each (N, T)."""
        N, T, _ = obs.shape
        piece, pos, S, L, piece_env, fresh = _segments(episode_start)
        init = self.init_state(S)
        start = where_rows(fresh, init, state0[piece_env])
        padded = obs.new_zeros(S, L, self.obs_dim)
        padded[piece, pos] = obs.reshape(N * T, -1)
        if self.k > 1:  # window of the k latest observations, the piece's stored frames before its first step
            seq = torch.cat([start["frames"][:, 1:], padded], dim=1)
            padded = seq.unfold(1, self.k, 1).transpose(-1, -2).flatten(2)  # (S, L, k * obs_dim)
        if self.nt:  # each piece's clock runs on from its start state's (0 for a piece that begins an episode)
            t = start["t"][:, None] + torch.arange(L, dtype=start["t"].dtype)
            padded = torch.cat([padded, clock(t, self.freq)], dim=2)
        feats = self.actor(padded, start["actor"])[piece, pos]
        vfeats = feats if self.critic is None else self.critic(padded, start["critic"])[piece, pos]
        dist = self.head.dist(feats)
        a = actions.reshape(N * T, -1)
        return (dist.log_prob(a).view(N, T), dist.entropy().view(N, T), self.value(vfeats)[:, 0].view(N, T))
