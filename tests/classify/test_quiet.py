"""verbose: XLSTMClassifier prints nothing at verbose=0, Lightning's progress bar alone at the default verbose=1
(with or without a validation split), and Lightning's own messages only at verbose=2."""

import numpy as np
import pytest
from sklearn.base import clone

from tests.quiet_helpers import bar_only
from xseq import XLSTMClassifier

TINY = dict(d_model=16, layout="ms", num_heads=2, max_epochs=2, batch_size=16, threads=1)



@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    y = np.array(["a", "b"] * 12)
    X = rng.standard_normal((24, 12, 2)) + (y == "b")[:, None, None]
    return X, y



@pytest.mark.parametrize("val_size", [0.0, 0.25])
def test_verbose_0_prints_nothing_at_all(data, val_size, capfd, recwarn, lightning_log):
    XLSTMClassifier(**TINY, val_size=val_size, verbose=0).fit(*data)
    XLSTMClassifier(**TINY, val_size=val_size, progress_bar=False).fit(*data)
    assert capfd.readouterr() == ("", "")
    assert [str(w.message) for w in recwarn] == []
    assert [r.getMessage() for r in lightning_log] == []


@pytest.mark.parametrize("val_size", [0.0, 0.25])
def test_default_prints_the_progress_bar_only(data, val_size, capfd, recwarn, lightning_log):
    XLSTMClassifier(**TINY, val_size=val_size).fit(*data)
    out, err = capfd.readouterr()
    assert "Epoch 1" in out + err and bar_only(out) and bar_only(err)
    assert [str(w.message) for w in recwarn] == []
    assert [r.getMessage() for r in lightning_log] == []


def test_verbose_2_lets_lightning_talk_and_verbose_is_a_parameter(data, lightning_log):
    clf = XLSTMClassifier(**TINY, progress_bar=False, verbose=2)
    assert clone(clf).get_params()["verbose"] == 2 and clf.set_params(verbose=True).verbose is True
    clf.set_params(verbose=2).fit(*data)
    assert any(r.getMessage().startswith("GPU available") for r in lightning_log)
    with pytest.raises(ValueError, match="verbose must be"):
        clf.set_params(verbose="loud").fit(*data)
