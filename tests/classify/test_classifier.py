"""XLSTMClassifier: scikit-learn contract, padding invariance, learning on real data, bad input."""
import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import parametrize_with_checks

from xseq import XLSTMClassifier
from xseq.datasets import load_ts

FAST = dict(d_model=16, layout="ms", num_heads=2, max_epochs=20, batch_size=16, progress_bar=False, threads=1,
            dropout=0.0, label_smoothing=0.0)


@pytest.fixture(scope="module")
def vowels(data_dir):
    return (load_ts("ucr/JapaneseVowels/JapaneseVowels_TRAIN.ts", data_dir=data_dir),
            load_ts("ucr/JapaneseVowels/JapaneseVowels_TEST.ts", data_dir=data_dir))


@pytest.fixture(scope="module")
def fitted_vowels(vowels):
    train, _ = vowels
    labels = np.array([f"speaker {v}" for v in train.y])  # arbitrary string labels
    return XLSTMClassifier(**{**FAST, "max_epochs": 15}).fit(train.X, labels)


def test_learns_variable_length_multivariate_set(fitted_vowels, vowels):
    _, test = vowels
    acc = fitted_vowels.score(test.X, np.array([f"speaker {v}" for v in test.y]))
    assert acc > 0.8, acc  # 9 speakers: chance is ~0.24
    assert list(fitted_vowels.classes_) == [f"speaker {i}" for i in range(1, 10)]
    p = fitted_vowels.predict_proba(test.X[:5])
    assert p.shape == (5, 9) and np.allclose(p.sum(1), 1)


def test_univariate_2d_input(data_dir):
    train = load_ts("ucr/ItalyPowerDemand/ItalyPowerDemand_TRAIN.ts", data_dir=data_dir)
    test = load_ts("ucr/ItalyPowerDemand/ItalyPowerDemand_TEST.ts", data_dir=data_dir)
    clf = XLSTMClassifier(**{**FAST, "max_epochs": 30}).fit(train.X[..., 0], train.y)  # (n, T)
    assert clf.score(test.X[..., 0], test.y) > 0.85   # chance 0.5
    np.testing.assert_array_equal(clf.predict(test.X[:50]), clf.predict(test.X[:50, :, 0]))


def test_padding_invariance(fitted_vowels, vowels):
    """A sequence's probabilities do not depend on what it is batched beside (and so padded to)."""
    _, test = vowels
    lengths = np.array([len(x) for x in test.X])
    short = [test.X[i] for i in np.argsort(lengths)[:10]]
    longest = test.X[int(lengths.argmax())]
    alone = np.concatenate([fitted_vowels.predict_proba([x]) for x in short])
    beside = fitted_vowels.predict_proba([longest, *short, longest])[1:-1]
    np.testing.assert_allclose(beside, alone, atol=1e-5, rtol=0)
    mixed = fitted_vowels.predict_proba(test.X)
    np.testing.assert_allclose(mixed[np.argsort(lengths)[:10]], alone, atol=1e-5, rtol=0)


def test_clone_pickle_and_not_fitted(fitted_vowels, vowels):
    _, test = vowels
    c = clone(fitted_vowels)
    assert c.get_params() == fitted_vowels.get_params() and not hasattr(c, "net_")
    with pytest.raises(NotFittedError):
        c.predict(test.X[:2])
    again = pickle.loads(pickle.dumps(fitted_vowels))
    np.testing.assert_array_equal(again.predict_proba(test.X[:20]), fitted_vowels.predict_proba(test.X[:20]))


def test_bad_input(fitted_vowels, vowels):
    train, test = vowels
    ragged = np.empty(2, dtype=object)
    ragged[0], ragged[1] = np.zeros((5, 12)), np.zeros((7, 12))
    with pytest.raises(ValueError, match="ragged"):
        XLSTMClassifier(**FAST).fit(ragged, ["a", "b"])
    X = [x.copy() for x in train.X[:20]]
    X[3][2, 4] = np.nan
    with pytest.raises(ValueError, match=r"X\[3\] holds NaN"):
        XLSTMClassifier(**FAST).fit(X, train.y[:20])
    with pytest.raises(ValueError, match="12 channels|fitted on 12"):
        fitted_vowels.predict([x[:, :11] for x in test.X[:3]])
    with pytest.raises(ValueError, match="one class only"):
        XLSTMClassifier(**FAST).fit(train.X[:10], ["same"] * 10)
    with pytest.raises(ValueError, match="one label per sequence"):
        XLSTMClassifier(**FAST).fit(train.X[:10], train.y[:9])
    with pytest.raises(ValueError, match="max_epochs must be a positive int"):
        XLSTMClassifier(max_epochs=0).fit(train.X[:10], train.y[:10])
    with pytest.raises(ValueError, match="real numbers"):
        XLSTMClassifier(**FAST).fit(np.array([["a", "b"], ["c", "d"]]), [0, 1])


def test_validation_split_and_early_stopping(vowels):
    train, test = vowels
    clf = XLSTMClassifier(**{**FAST, "max_epochs": 40, "val_size": 0.2, "patience": 3}).fit(train.X, train.y)
    assert 0 <= clf.best_epoch_ < clf.n_epochs_ <= 40
    assert clf.score(test.X, test.y) > 0.7


def test_stream_equals_prefix_probabilities(fitted_vowels, vowels):
    _, test = vowels
    x = test.X[0]
    stream = fitted_vowels.stream()
    outs = np.stack([stream.update(x[t:t + 1]).numpy()[0] for t in range(len(x))])
    ref = fitted_vowels.predict_proba([x[:t + 1] for t in range(len(x))])
    np.testing.assert_allclose(outs, ref, atol=1e-5, rtol=0)


# sklearn's own checks. Those that assume (n_samples, n_features) tables do not apply to sequences:
NOT_FOR_SEQUENCES = {
    "check_n_features_in_after_fitting": "a 2-d X is (n, T) sequences: T is a length, not a feature count; "
                                         "the channel count is n_channels_",
    "check_n_features_in": "same: n_features_in_ would name the sequence length",
    "check_classifiers_train": "it expects an error when predict's X has another 'number of features' (T), but "
                               "sequences of another length are valid input",
}


@parametrize_with_checks([XLSTMClassifier(**{**FAST, "max_epochs": 5})],
                         expected_failed_checks=lambda est: NOT_FOR_SEQUENCES)
def test_sklearn_checks(estimator, check):
    check(estimator)
