"""The classifier's kernel part: causal kernel features (batch form = step form on every prefix), the closed-form
ridge's leave-one-out logits (= refits without each row), and the estimator with one part or both, with and
without the patch stem (the stream equals predict_proba on every prefix, also before the first patch)."""
import numpy as np
import pytest
import torch

from xseq import XLSTMClassifier
from xseq.classify.kernels import PATTERNS, CausalKernels, dilations_for
from xseq.classify.ridge import fit_ridge


def test_dilations_rule():
    assert dilations_for(9) == [1] * 32
    d = dilations_for(427)
    assert d[0] == 1 and d[-1] == 53 and len(d) == 32 and d == sorted(d) and len(set(d)) > 20
    short = dilations_for(24)
    assert 8 * max(short) <= 23 and short.count(1) > short.count(2) > 0


def test_kernel_features_are_running_and_causal():
    """PPVs of the batch form over every prefix equal the step form's counts / t; a row's features do not
    depend on the values after its length (padding) nor on its neighbours."""
    g = torch.Generator().manual_seed(0)
    B, T, C = 3, 40, 4
    x = torch.randn(B, T, C, generator=g).double()
    lengths = torch.tensor([40, 23, 1])
    k = CausalKernels(C, dilations_for(T), biases_per_kernel=3, seed=1).fit(x, lengths, seed=2)
    assert k.n_features == len(PATTERNS) * len(dilations_for(T)) * 3
    assert k.bias.abs().sum() > 0
    state = k.init_state(B, C, "cpu")
    window, positive = state["window"], state["positive"]
    for t in range(T):
        first = torch.full((B,), t == 0)
        positive, window = k.step(x[:, t], first, window, positive)
        if t in (0, 1, 8, 17, 39):
            batch = k(x[:, :t + 1], torch.full((B,), t + 1))
            torch.testing.assert_close(positive / (t + 1), batch, rtol=0, atol=1e-12)
    padded = x.clone()
    padded[1, 23:] = 1e3
    alone = k(x[1:2, :23], torch.tensor([23]))
    torch.testing.assert_close(k(padded, lengths)[1:2], alone, rtol=0, atol=1e-12)
    assert not torch.equal(k(x, torch.full((B,), T))[1], alone[0])  # the later steps do count when valid


def test_ridge_leave_one_out_equals_refits():
    rng = np.random.default_rng(0)
    n, p, k = 14, 30, 3
    Z = rng.normal(size=(n, p))
    codes = np.arange(n) % k
    Z[np.arange(n), codes] += 2.0
    fit = fit_ridge(Z, codes, k, alphas=[0.7])
    for i in (0, 5, 13):
        rest = np.delete(np.arange(n), i)
        # refit on the other rows with the same penalty, on features standardised with all rows' statistics
        # (fit_ridge standardises once, as RidgeClassifierCV does after its scaler)
        Zs = (Z - fit.mean) / fit.scale
        Y = np.full((n, k), -1.0)
        Y[np.arange(n), codes] = 1.0
        A, Yr = Zs[rest], Y[rest]
        mu, ym = A.mean(0), Yr.mean(0)
        W = np.linalg.solve((A - mu).T @ (A - mu) + 0.7 * np.eye(p), (A - mu).T @ (Yr - ym))
        pred = (Zs[i] - mu) @ W + ym
        np.testing.assert_allclose(fit.loo_logits[i], fit.temperature * pred, rtol=1e-7, atol=1e-9)
    # the full fit's logits on its own rows are the closed-form solution's
    Zs = (Z - fit.mean) / fit.scale
    mu = Zs.mean(0)
    Y = np.full((n, k), -1.0)
    Y[np.arange(n), codes] = 1.0
    W = np.linalg.solve((Zs - mu).T @ (Zs - mu) + 0.7 * np.eye(p), (Zs - mu).T @ (Y - Y.mean(0)))
    np.testing.assert_allclose(fit.logits(Z), fit.temperature * ((Zs - mu) @ W + Y.mean(0)), rtol=1e-7, atol=1e-9)


def _toy(n=40, T=30, C=2, seed=0):
    """Two classes that differ in the shape of a bump, at a random place, in sequences of different lengths."""
    rng = np.random.default_rng(seed)
    X, y = [], []
    for i in range(n):
        length = int(rng.integers(T // 2, T + 1))
        x = rng.normal(scale=0.3, size=(length, C))
        at = int(rng.integers(0, length - 6))
        x[at:at + 6, 0] += np.array([0, 1, 2, 2, 1, 0]) if i % 2 else np.array([2, -2, 2, -2, 2, -2])
        X.append(x.astype(np.float32))
        y.append("ab"[i % 2])
    return X, np.array(y)


@pytest.mark.parametrize("parts", [dict(xlstm=False), dict(kernel_features=500, d_model=16, max_epochs=3),
                                   dict(kernel_features=500, d_model=16, max_epochs=3, patch=4),
                                   dict(kernel_features=0, d_model=16, max_epochs=40, patch=3)])
def test_stream_and_padding_with_kernels(parts):
    X, y = _toy()
    clf = XLSTMClassifier(**parts, progress_bar=False, threads=1, num_heads=2).fit(X, y)
    assert clf.score(*_toy(seed=1)) > (0.8 if clf.kernel_features else 0.6)  # chance: 0.5
    x = X[3]
    stream = clf.stream()
    outs = np.stack([stream.update(x[t:t + 1]).numpy()[0] for t in range(len(x))])
    ref = clf.predict_proba([x[:t + 1] for t in range(len(x))])
    np.testing.assert_allclose(outs, ref, atol=1e-5, rtol=0)
    longest = max(X, key=len)
    np.testing.assert_allclose(clf.predict_proba([longest, x])[1], clf.predict_proba([x])[0], atol=1e-5, rtol=0)


def test_kernel_parameters_checked():
    X, y = _toy(n=10)
    with pytest.raises(ValueError, match="kernel_features must be an int >= 0"):
        XLSTMClassifier(kernel_features=-1).fit(X, y)
    with pytest.raises(ValueError, match="no part left"):
        XLSTMClassifier(kernel_features=0, xlstm=False).fit(X, y)


def test_size_rules():
    """The stated defaults: patch ~ T / 32, d_model 32, epochs = clip(round(2 * patch * sqrt(C)), 2, 60), 10,000
    kernel features over 32 dilation slots; explicit values win."""
    shape, epochs = XLSTMClassifier()._resolve_sizes(n=50, length=150, n_features=1)
    assert shape["patch"] == 5 and shape["d_model"] == 32 and epochs == 10
    assert len(shape["dilations"]) == 32 and max(shape["dilations"]) == 18 and shape["biases_per_kernel"] == 4
    assert XLSTMClassifier()._resolve_sizes(n=270, length=29, n_features=12)[1] == 7
    assert XLSTMClassifier()._resolve_sizes(n=100, length=1460, n_features=1)[1] == 60
    shape, epochs = XLSTMClassifier(patch=2, d_model=8, max_epochs=3)._resolve_sizes(50, 150, 1)
    assert (shape["patch"], shape["d_model"], epochs) == (2, 8, 3)


def test_validation_keeps_the_kernel_part_when_the_xlstm_does_not_help():
    """With a validation split, the xLSTM's epochs are kept only where they beat the kernel part alone (its
    untrained head adds 0): an xLSTM trained at an absurd rate is dropped, and the classifier is then the
    kernel part alone (the same biases and ridge as xlstm=False on the same split)."""
    X, y = _toy()
    common = dict(kernel_features=500, val_size=0.25, progress_bar=False, threads=1, seed=3)
    clf = XLSTMClassifier(**common, d_model=16, num_heads=2, max_epochs=3, learning_rate=5.0).fit(X, y)
    assert clf.best_epoch_ == -1 and clf.n_epochs_ == 3
    alone = XLSTMClassifier(**common, xlstm=False).fit(X, y)
    Xt, _ = _toy(seed=1)
    np.testing.assert_allclose(clf.predict_proba(Xt), alone.predict_proba(Xt), atol=1e-6, rtol=0)
