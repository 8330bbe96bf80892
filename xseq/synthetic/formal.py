"""The formal-language tasks of paper D.1.1 (after Delétang et al. 2023), generated in batches with numpy.

A sample is a task string of n symbols followed by its answer. Every task is framed as labelling: the model
reads `inputs` left to right and is scored, at the positions where `mask` is True, on predicting `targets`
there. Answer positions hold PAD in the inputs (Listing 1's red tokens: evaluated, but padded for the
input), so the answer is never visible. Samples of a batch have different n and are right-padded with PAD;
padded positions have mask False and count toward neither loss nor accuracy.

Token ids per task: the task's symbols first, then its special tokens, PAD last (vocab_size - 1). The
vocabulary sizes and random accuracies s_rand are those of the paper's task descriptions."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Batch:
    inputs: np.ndarray  # (N, L) int64
    targets: np.ndarray  # (N, L) int64, PAD where mask is False
    mask: np.ndarray  # (N, L) bool: the positions that count
    lengths: np.ndarray  # (N,) the task length n of each sample


class Task:
    name: str
    vocab_size: int
    s_rand: float

    @property
    def pad(self) -> int:
        return self.vocab_size - 1

    def sample(self, rng: np.random.Generator, batch_size: int, lengths: tuple[int, int]) -> Batch:
        lo, hi = lengths
        ints = isinstance(lo, (int, np.integer)) and isinstance(hi, (int, np.integer))
        if not (ints and self.min_length <= lo <= hi):
            raise ValueError(f"lengths for {self.name} must be (lo, hi) ints with {self.min_length} <= lo <= hi; "
                             f"got {lengths!r}")
        n = rng.integers(lo, hi + 1, size=batch_size)
        return self.make(rng, n)

    min_length = 1

    def make(self, rng: np.random.Generator, n: np.ndarray) -> Batch:
        raise NotImplementedError

    def scaled_accuracy(self, accuracy: float) -> float:
        """D.1.1: 0 = random guessing (s_rand), 1 = perfect."""
        return (accuracy - self.s_rand) / (1.0 - self.s_rand)


def _symbols(rng, n, count):
    """(N, max n) uniform symbols in [0, count) and the validity mask pos < n."""
    width = int(n.max())
    pos = np.arange(width)[None, :]
    return rng.integers(0, count, size=(len(n), width)), pos < n[:, None]


def _layout(task: Task, n: np.ndarray, body: np.ndarray, valid: np.ndarray, answers: np.ndarray,
            n_answers: np.ndarray, separator: int | None = None) -> Batch:
    """inputs = body[:n] (+ separator) + PAD x n_answers; targets at the answer positions = answers[:k]."""
    N = len(n)
    sep = 0 if separator is None else 1
    total = n + sep + n_answers
    L = int(total.max())
    pos = np.arange(L)[None, :]
    inputs = np.full((N, L), task.pad, dtype=np.int64)
    w = body.shape[1]
    inputs[:, :w] = np.where(valid, body, task.pad)
    if separator is not None:
        inputs[np.arange(N), n] = separator
    start = (n + sep)[:, None]
    mask = (pos >= start) & (pos < total[:, None])
    idx = np.clip(pos - start, 0, answers.shape[1] - 1)
    targets = np.where(mask, np.take_along_axis(answers, idx, axis=1), task.pad)
    return Batch(inputs, targets.astype(np.int64), mask, n)


class Parity(Task):
    """a/b string; answer a if the number of b is even, else b. (a=0, b=1, PAD=2)"""
    name, vocab_size, s_rand = "parity", 3, 0.5

    def make(self, rng, n):
        body, valid = _symbols(rng, n, 2)
        answer = (np.where(valid, body, 0).sum(1) % 2)[:, None]
        return _layout(self, n, body, valid, answer, np.ones_like(n))


class EvenPairs(Task):
    """a/b string; answer a if the number of 'ab' and 'ba' is even (first == last symbol), else b."""
    name, vocab_size, s_rand = "even_pairs", 3, 0.5

    def make(self, rng, n):
        body, valid = _symbols(rng, n, 2)
        last = body[np.arange(len(n)), n - 1]
        return _layout(self, n, body, valid, (body[:, 0] != last).astype(np.int64)[:, None], np.ones_like(n))


class CycleNav(Task):
    """Moves STAY/+1/-1 (0, 1, 2) on a cycle of 5 from position 0; answer the final position P0..P4 (3..7)."""
    name, vocab_size, s_rand = "cycle_nav", 9, 1 / 5

    def make(self, rng, n):
        body, valid = _symbols(rng, n, 3)
        step = np.select([body == 1, body == 2], [1, -1], 0) * valid
        return _layout(self, n, body, valid, (3 + step.sum(1) % 5)[:, None], np.ones_like(n))


class ModArithmetic(Task):
    """Digits 0..4 joined by + - * (5, 6, 7), then '=' (8); answer the value modulo 5 with * binding
    tighter than + and -. The task length n is the expression's token count, made odd (n -> n - 1 + n % 2)."""
    name, vocab_size, s_rand = "mod_arithmetic", 10, 1 / 5
    PLUS, MINUS, TIMES, EQ = 5, 6, 7, 8

    def make(self, rng, n):
        n = n - 1 + n % 2  # numbers and operators alternate
        k = (n - 1) // 2  # operators per sample
        N, K = len(n), int(k.max())
        nums = rng.integers(0, 5, size=(N, K + 1))
        ops = rng.integers(self.PLUS, self.TIMES + 1, size=(N, K))
        total, sign, term = np.zeros(N, np.int64), np.ones(N, np.int64), nums[:, 0].copy()
        for i in range(K):  # left to right: fold products into `term`, sums into `total`
            live = i < k
            times = live & (ops[:, i] == self.TIMES)
            plus_minus = live & ~times
            total = np.where(plus_minus, total + sign * term, total)
            sign = np.where(plus_minus, np.where(ops[:, i] == self.PLUS, 1, -1), sign)
            term = np.where(times, term * nums[:, i + 1] % 5, np.where(plus_minus, nums[:, i + 1], term))
        value = (total + sign * term) % 5
        width = 2 * K + 1
        body = np.empty((N, width), np.int64)
        body[:, 0::2], body[:, 1::2] = nums, ops
        valid = np.arange(width)[None, :] < n[:, None]
        return _layout(self, n, body, valid, value[:, None], np.ones_like(n), separator=self.EQ)


class Majority(Task):
    """63 symbols; answer the most frequent one (ties: the smallest id)."""
    name, vocab_size, s_rand = "majority", 64, 1 / 63

    def make(self, rng, n):
        body, valid = _symbols(rng, n, 63)
        counts = _counts(body, valid, 63)
        return _layout(self, n, body, valid, counts.argmax(1)[:, None], np.ones_like(n))


class MajorityCount(Task):
    """63 ordered symbols 0..62; answer the count of the most frequent symbol, as the symbol of that number
    (capped at 62, the highest)."""
    name, vocab_size, s_rand = "majority_count", 64, 1 / 63

    def make(self, rng, n):
        body, valid = _symbols(rng, n, 63)
        count = np.minimum(_counts(body, valid, 63).max(1), 62)
        return _layout(self, n, body, valid, count[:, None], np.ones_like(n))


class BucketSort(Task):
    """10 ordered symbols; the answer is the string sorted (n answer tokens, no separator)."""
    name, vocab_size, s_rand = "bucket_sort", 11, 1 / 10

    def make(self, rng, n):
        body, valid = _symbols(rng, n, 10)
        return _layout(self, n, body, valid, np.sort(np.where(valid, body, 10), axis=1), n)


class Repetition(Task):
    """10 symbols, then ACT (10); the answer repeats the string (PAD = 11)."""
    name, vocab_size, s_rand = "repetition", 12, 1 / 10
    ACT = 10

    def make(self, rng, n):
        body, valid = _symbols(rng, n, 10)
        return _layout(self, n, body, valid, body, n, separator=self.ACT)


class ReverseString(Task):
    """10 symbols, then ACT (10); the answer is the string reversed."""
    name, vocab_size, s_rand = "reverse_string", 12, 1 / 10
    ACT = 10

    def make(self, rng, n):
        body, valid = _symbols(rng, n, 10)
        idx = np.clip(n[:, None] - 1 - np.arange(body.shape[1])[None, :], 0, None)
        return _layout(self, n, body, valid, np.take_along_axis(body, idx, axis=1), n, separator=self.ACT)


class MissingDuplicate(Task):
    """9 symbols: the string, then the string again with one token replaced by MIS (9); answer the hidden
    token (PAD = 10). The task length n is the length of the string."""
    name, vocab_size, s_rand = "missing_duplicate", 11, 1 / 9
    MIS = 9

    def make(self, rng, n):
        body, valid = _symbols(rng, n, 9)
        N, W = body.shape
        hidden = rng.integers(0, n)  # which token of the copy is hidden
        copy = body.copy()
        copy[np.arange(N), hidden] = self.MIS
        pos = np.arange(2 * W)[None, :]
        idx = np.where(pos < n[:, None], pos, pos - n[:, None])
        both = np.where(pos < n[:, None], np.take_along_axis(body, np.clip(idx, 0, W - 1), 1),
                        np.take_along_axis(copy, np.clip(idx, 0, W - 1), 1))
        answer = body[np.arange(N), hidden][:, None]
        batch = _layout(self, 2 * n, both, pos < 2 * n[:, None], answer, np.ones_like(n))
        batch.lengths = n
        return batch


def _counts(body, valid, k):
    N = body.shape[0]
    counts = np.zeros((N, k), np.int64)
    np.add.at(counts, (np.repeat(np.arange(N), body.shape[1]), body.ravel()), valid.ravel().astype(np.int64))
    return counts


TASKS: dict[str, Task] = {t.name: t for t in (Parity(), EvenPairs(), CycleNav(), ModArithmetic(), Majority(),
                                              MajorityCount(), BucketSort(), Repetition(), ReverseString(),
                                              MissingDuplicate())}


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise ValueError(f"unknown formal-language task {name!r}; known: {sorted(TASKS)}")
    return TASKS[name]
