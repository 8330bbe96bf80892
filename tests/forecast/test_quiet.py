"""verbose: the forecasters print nothing at verbose=0, Lightning's progress bar alone at the default verbose=1,
and Lightning's own messages only at verbose=2; xseq.common.quiet.quiet_lightning restores what it changes."""
import logging
import warnings

import numpy as np
import pandas as pd
import pytest

from tests.quiet_helpers import bar_only
from xseq import ForecastEnsemble, XLSTMForecaster
from xseq.common.quiet import check_verbose, quiet_lightning, show_progress

TINY = dict(patch_len=8, d_model=16, layout="ms", max_epochs=2, batch_size=64, threads=1)



def panel(T=120, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(T)
    return pd.DataFrame({"a": np.sin(t / 4) + 0.1 * rng.standard_normal(T), "b": rng.standard_normal(T)},
                        index=pd.date_range("2024-01-01", periods=T, freq="D"))



def test_verbose_0_prints_nothing_at_all(capfd, recwarn, lightning_log):
    y = panel()
    XLSTMForecaster(4, 16, **TINY, verbose=0).fit(y)
    # the quantile stage (no validation), refit, and an ensemble through its base's settings
    XLSTMForecaster(4, 16, **{**TINY, "max_epochs": 1}, val_size=0, quantiles=[0.1, 0.9], quantile_epochs=1,
                    verbose=False).fit(y)
    ForecastEnsemble(XLSTMForecaster(4, 16, **{**TINY, "max_epochs": 1}, refit=True, verbose=0)).fit(y)
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")
    assert [str(w.message) for w in recwarn] == []
    assert [r.getMessage() for r in lightning_log] == []


def test_default_prints_the_progress_bar_only(capfd, recwarn, lightning_log):
    XLSTMForecaster(4, 16, **TINY).fit(panel())
    out, err = capfd.readouterr()
    assert "Epoch 1" in out + err and bar_only(out) and bar_only(err)
    assert "available" not in out + err and "Tip" not in out + err
    assert [str(w.message) for w in recwarn] == []
    assert [r.getMessage() for r in lightning_log] == []


def test_progress_bar_false_keeps_it_off_and_verbose_2_lets_lightning_talk(capfd, recwarn, lightning_log):
    XLSTMForecaster(4, 16, **TINY, progress_bar=False).fit(panel())
    assert capfd.readouterr() == ("", "") and not lightning_log and not len(recwarn)
    XLSTMForecaster(4, 16, **TINY, progress_bar=False, verbose=2).fit(panel())
    assert any(r.getMessage().startswith("GPU available") for r in lightning_log)


@pytest.mark.parametrize("bad", [-1, 3.5, "loud", None])
def test_bad_verbose_is_named(bad):
    with pytest.raises(ValueError, match="verbose must be"):
        XLSTMForecaster(4, 16, **TINY, verbose=bad).fit(panel())


def test_quiet_lightning_restores_levels_and_filters_and_passes_other_warnings():
    assert [check_verbose(v) for v in (False, True, 0, 1, 2, 5, np.int64(1))] == [0, 1, 0, 1, 2, 2, 1]
    assert (show_progress(1), show_progress(1, False), show_progress(0), show_progress(2)) == (True, False, False, True)
    log = logging.getLogger("lightning.pytorch")
    level, filters = log.level, list(warnings.filters)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with quiet_lightning(0):
            assert log.getEffectiveLevel() == logging.ERROR
            warnings.warn("The dataloader, train_dataloader, does not have many workers which may be a bottleneck.")
            warnings.warn("a real problem")
        warnings.warn("The dataloader does not have many workers")
    assert [str(w.message) for w in seen] == ["a real problem", "The dataloader does not have many workers"]
    assert log.level == level and warnings.filters == filters
    with quiet_lightning(2):
        assert log.level == level


def test_tirex_fine_tuning_is_quiet(capfd, recwarn, lightning_log, tmp_path):
    pytest.importorskip("tirex.models.tirex", reason="tirex-ts (the test extra) is not installed")
    from tests.forecast.test_tirex import SMALL, write_random_checkpoint
    from xseq import TiRexForecaster

    ckpt = write_random_checkpoint(SMALL[0], tmp_path / "small.ckpt", seed=3)
    y = panel(T=200)
    common = dict(horizon=8, max_epochs=1, batch_size=16, max_train_windows=32)
    TiRexForecaster(ckpt, **common, val_size=0, verbose=0).fit(y)  # no validation part: no val loop at all
    TiRexForecaster(ckpt, **common, val_size=16, progress_bar=False).fit(y)
    assert capfd.readouterr() == ("", "")
    assert [str(w.message) for w in recwarn] == []
    assert [r.getMessage() for r in lightning_log] == []
