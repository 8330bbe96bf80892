"""Each generator against an independent brute-force solver, sample by sample, on random samples."""
from collections import Counter

import numpy as np
import pytest

from xseq.synthetic.formal import TASKS, get_task
from xseq.synthetic.recall import mqar, nearest_neighbour


def decode(task, batch, i):
    """(string before the answer, answer tokens) of sample i, read off inputs/targets/mask."""
    m = batch.mask[i]
    first = int(np.argmax(m))
    end = first + int(m.sum())
    assert m[first:end].all() and not m[end:].any(), "answer positions are one contiguous run"
    assert (batch.inputs[i, first:] == task.pad).all(), "answers (and the padding after them) are hidden"
    return list(batch.inputs[i, :first]), list(batch.targets[i, first:end])


def mod5_eval(tokens):
    expr = "".join({5: "+", 6: "-", 7: "*"}.get(t, str(t)) for t in tokens)
    return eval(expr) % 5  # python's precedence: * before + and -


def solve(name, s):
    """Brute force, written from the task descriptions (D.1.1), not from the generators."""
    if name == "parity":
        return [s.count(1) % 2]
    if name == "even_pairs":
        pairs = sum(1 for a, b in zip(s, s[1:]) if a != b)
        return [pairs % 2]
    if name == "cycle_nav":
        pos = 0
        for t in s:
            pos = (pos + {0: 0, 1: 1, 2: -1}[t]) % 5
        return [3 + pos]
    if name == "mod_arithmetic":
        assert s[-1] == 8
        return [mod5_eval(s[:-1])]
    if name == "majority":
        c = Counter(s)
        best = max(c.values())
        return [min(t for t in c if c[t] == best)]
    if name == "majority_count":
        return [min(max(Counter(s).values()), 62)]
    if name == "bucket_sort":
        return sorted(s)
    if name == "repetition":
        assert s[-1] == 10
        return s[:-1]
    if name == "reverse_string":
        assert s[-1] == 10
        return s[:-1][::-1]
    if name == "missing_duplicate":
        n = len(s) // 2
        first, second = s[:n], s[n:]
        assert second.count(9) == 1
        i = second.index(9)
        assert second[:i] + second[i + 1:] == first[:i] + first[i + 1:]
        return [first[i]]
    raise KeyError(name)


@pytest.mark.parametrize("name", sorted(TASKS))
@pytest.mark.parametrize("lengths", [(1, 40), (40, 256)])
def test_formal_task_targets_match_brute_force(name, lengths):
    task = get_task(name)
    rng = np.random.default_rng(7)
    batch = task.sample(rng, 200, lengths)
    assert batch.inputs.max() < task.vocab_size and batch.inputs.min() >= 0
    for i in range(200):
        s, answer = decode(task, batch, i)
        assert answer == solve(name, s), (name, s, answer)
        # padding after the sample: PAD in the inputs, never counted
        L = len(s) + len(answer)
        assert not batch.mask[i, L:].any()


def test_lengths_and_padding():
    task = get_task("repetition")
    b = task.sample(np.random.default_rng(0), 64, (3, 40))
    assert b.lengths.min() >= 3 and b.lengths.max() <= 40
    assert b.inputs.shape[1] == 2 * b.lengths.max() + 1
    assert (b.mask.sum(1) == b.lengths).all()
    with pytest.raises(ValueError, match="lengths for repetition"):
        task.sample(np.random.default_rng(0), 4, (0, 3))
    with pytest.raises(ValueError, match="unknown formal-language task"):
        get_task("palindrome")


def test_scaled_accuracy():
    t = get_task("cycle_nav")
    assert t.scaled_accuracy(0.2) == pytest.approx(0.0) and t.scaled_accuracy(1.0) == 1.0


def test_mqar_keys_unique_queries_answered():
    rng = np.random.default_rng(3)
    b = mqar(rng, 100, 256, 16)
    V = 8192
    for i in range(100):
        x = b.inputs[i]
        keys, values = list(x[0:32:2]), list(x[1:32:2])
        assert len(set(keys)) == 16 and all(1 <= k < V // 2 for k in keys)
        assert len(set(values)) == 16 and all(V // 2 <= v < V for v in values)
        table = dict(zip(keys, values))
        q = np.flatnonzero(b.mask[i])
        assert len(q) == 16 and q.min() >= 32
        assert sorted(x[q]) == sorted(keys)  # every key asked once
        for p in q:
            assert b.targets[i, p] == table[x[p]]
        rest = np.ones(256, bool)
        rest[:32], rest[q] = False, False
        assert (x[rest] == 0).all() and not b.mask[i, rest].any()  # the zero filler never counts
    # power law: queries lean towards the start of the query region
    q = np.flatnonzero(b.mask.ravel()) % 256
    assert np.median(q) < 32 + (256 - 32) / 2
    with pytest.raises(ValueError, match="at least 4 x num_kv"):
        mqar(rng, 2, 64, 32)


def test_nearest_neighbour_brute_force():
    x, y = nearest_neighbour(np.random.default_rng(0), 20, 30)
    assert x.shape == (20, 30, 3) and np.isnan(y[:, 0]).all()
    for i in range(20):
        key = x[i, 0, :2]
        for t in range(1, 30):
            d = [np.linalg.norm(x[i, s, :2] - key) for s in range(1, t + 1)]
            assert y[i, t] == pytest.approx(x[i, 1 + int(np.argmin(d)), 2], abs=1e-6)
