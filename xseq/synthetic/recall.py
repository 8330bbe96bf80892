"""Multi-Query Associative Recall (Arora et al. 2023; paper D.1.2) and the nearest-neighbour search task
(paper D, Figure 1), generated in batches with numpy.

MQAR: a sample starts with `num_kv` key-value pairs (k1 v1 k2 v2 ...), keys unique within the sample and
drawn from the lower half of the vocabulary (ids 1 .. V/2 - 1), values (also unique) from the upper half.
Every key is then queried once, in random order, at a position after the pairs drawn from a power law over
the distance (p(d) ~ d^(alpha - 1), alpha = 0.01 as in Arora et al.'s generator: most queries come early,
some far away). Every other position holds the zero token (paper Figure 10: "grey tokens ... represent a
zero token"). Framed as labelling: at a query position the input is the key and the target is its value
(mask True); nothing else counts."""
from __future__ import annotations

import numpy as np

from .formal import Batch


def mqar(rng: np.random.Generator, batch_size: int, seq_len: int, num_kv: int, vocab_size: int = 8192,
         power_a: float = 0.01) -> Batch:
    half = vocab_size // 2
    if not 1 <= num_kv < half - 1:
        raise ValueError(f"num_kv must be in [1, {half - 2}] for vocab_size {vocab_size}; got {num_kv!r}")
    gap = seq_len - 2 * num_kv  # positions left for queries and filler
    if gap < 2 * num_kv:
        raise ValueError(f"seq_len ({seq_len}) must be at least 4 x num_kv ({4 * num_kv}): the pairs, and room "
                         f"for num_kv queries among the filler after them")
    N = batch_size
    # unique keys per sample: the first num_kv of a random permutation of the key ids (argsort of uniforms)
    keys = np.argsort(rng.random((N, half - 1)), axis=1)[:, :num_kv] + 1
    values = np.argsort(rng.random((N, vocab_size - half)), axis=1)[:, :num_kv] + half
    inputs = np.zeros((N, seq_len), np.int64)  # the zero filler
    inputs[:, 0:2 * num_kv:2], inputs[:, 1:2 * num_kv:2] = keys, values
    # query slots: even offsets 0, 2, 4 ... after the pairs, chosen without replacement with p ~ power law
    slots = np.arange(gap // 2)
    p = (slots + 1.0) ** (power_a - 1.0)
    p /= p.sum()
    # Gumbel top-k: sampling num_kv slots without replacement with probabilities p, vectorised over rows
    scores = np.log(p)[None, :] - np.log(-np.log(rng.random((N, len(slots)))))
    chosen = np.argsort(-scores, axis=1)[:, :num_kv]
    pos = 2 * num_kv + 2 * chosen
    order = np.argsort(rng.random((N, num_kv)), axis=1)  # which key each chosen slot asks for
    rows = np.arange(N)[:, None]
    q_keys, q_values = keys[rows, order], values[rows, order]
    inputs[rows, pos] = q_keys
    targets = np.zeros((N, seq_len), np.int64)
    mask = np.zeros((N, seq_len), bool)
    targets[rows, pos], mask[rows, pos] = q_values, True
    return Batch(inputs.astype(np.int64), targets, mask, np.full(N, seq_len))


def nearest_neighbour(rng: np.random.Generator, batch_size: int, seq_len: int):
    """Inputs (N, T, 3): a unit vector in 2-d and a value in [0, 1] per step; step 0 is the search key (its
    value is ignored). Target (N, T): at step t >= 1, the value of the step s in 1..t whose vector is nearest
    to the key (NaN at step 0, which has none)."""
    if seq_len < 2:
        raise ValueError(f"seq_len must be >= 2; got {seq_len!r}")
    angle = rng.uniform(0, 2 * np.pi, size=(batch_size, seq_len))
    vec = np.stack([np.cos(angle), np.sin(angle)], axis=-1)
    value = rng.uniform(0, 1, size=(batch_size, seq_len))
    dist = np.linalg.norm(vec - vec[:, :1], axis=-1)
    dist[:, 0] = np.inf
    best = np.minimum.accumulate(dist, axis=1)
    is_new = dist <= best  # this step is the nearest so far
    idx = np.where(is_new, np.arange(seq_len)[None, :], 0)
    idx = np.maximum.accumulate(idx, axis=1)
    target = np.take_along_axis(value, idx, axis=1)
    target[:, 0] = np.nan
    x = np.concatenate([vec, value[..., None]], axis=-1).astype(np.float32)
    x[:, 0, 2] = 0.0
    return x, target.astype(np.float32)
