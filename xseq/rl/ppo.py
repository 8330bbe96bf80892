"""The PPO update: the clipped surrogate objective, a value loss and an entropy bonus, optimised for a number
of epochs over minibatches of whole stored sequences. Each minibatch runs through the policy's parallel
`evaluate` face from the sequences' start states (episode starts inside a sequence honoured, no loop over
time); advantages are normalised per minibatch."""
from __future__ import annotations

from typing import Iterator

import numpy as np
import torch
from tensordict import TensorDict

from .config import PPOConfig

STATS = ("pg_loss", "v_loss", "entropy", "clip_frac", "approx_kl")


def sequence_minibatches(num_sequences: int, per: int, epochs: int,
                         rng: np.random.Generator) -> Iterator[torch.Tensor]:
    """Row indices of `per` sequences at a time; a fresh permutation from `rng` for every epoch."""
    for _ in range(epochs):
        order = torch.from_numpy(rng.permutation(num_sequences))
        for i in range(0, num_sequences, per):
            yield order[i:i + per]


def annealed(cfg: PPOConfig, left: float) -> tuple[float, float]:
    """(learning rate, clip range) with `left` in [0, 1] of the schedule to go: linear to 0 where the config
    anneals them."""
    lr = cfg.learning_rate * (left if cfg.anneal_lr else 1.0)
    clip = cfg.clip_range * (left if cfg.anneal_clip else 1.0)
    return lr, clip


class PPOUpdate:
    """update = PPOUpdate(policy, optimizer, cfg, rng); stats = update(batch, state0, lr, clip).

    batch: a TensorDict with batch size (N, T) holding obs, actions, logp, advantages and returns (as
    RolloutBuffer.batch gives it); state0: the policy state before each sequence's first step. The minibatch
    order comes from `rng` (a numpy Generator); returns the mean of each loss statistic over the minibatches,
    with the lr and clip range used."""

    def __init__(self, policy, optimizer: torch.optim.Optimizer, cfg: PPOConfig, rng: np.random.Generator):
        self.policy, self.optimizer, self.cfg, self.rng = policy, optimizer, cfg, rng

    def __call__(self, batch: TensorDict, state0: TensorDict, lr: float, clip: float) -> dict:
        cfg, pol = self.cfg, self.policy
        for g in self.optimizer.param_groups:
            g["lr"] = lr
        per = cfg.minibatch_size // cfg.rollout_steps
        stats = dict.fromkeys(STATS, 0.0)
        n = 0
        for rows in sequence_minibatches(batch.batch_size[0], per, cfg.epochs, self.rng):
            mb = batch[rows]
            logp, ent, v = pol.evaluate(mb["obs"], mb["actions"], mb["episode_start"], state0[rows])
            adv = mb["advantages"]
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
            ratio = (logp - mb["logp"]).exp()
            pg = -torch.min(ratio * adv, ratio.clamp(1 - clip, 1 + clip) * adv).mean()
            v_loss = 0.5 * (mb["returns"] - v).pow(2).mean()
            loss = pg + cfg.vf_coef * v_loss - cfg.ent_coef * ent.mean()
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(pol.parameters(), cfg.max_grad_norm)
            self.optimizer.step()
            with torch.no_grad():
                stats["pg_loss"] += pg.item()
                stats["v_loss"] += v_loss.item()
                stats["entropy"] += ent.mean().item()
                stats["clip_frac"] += ((ratio - 1).abs() > clip).float().mean().item()
                stats["approx_kl"] += ((ratio - 1) - (logp - mb["logp"])).mean().item()
            n += 1
        return {k: v / n for k, v in stats.items()} | {"lr": lr, "clip_range": clip}
