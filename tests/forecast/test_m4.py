"""M4: the loader (real files and a user's own), the competition's measures, Naive2, and the recipe rules."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from xseq.datasets import load_m4
from xseq.forecast.metrics import m4_scores, mase, naive2, seasonal_indices, seasonality_test, smape
from xseq.forecast.recipes import forecaster_from_recipe, load_recipe, model_from_recipe
from xseq.forecast.rules import evaluate_rule

RECIPES = Path(__file__).resolve().parents[2] / "recipes" / "forecast"


def test_naive2_reproduces_the_quoted_weekly_figures(data_dir):
    """M4 Weekly: Naive2 (= naive, the period is 1) scores sMAPE 9.161 and MASE 2.777 in the competition."""
    m4 = load_m4("weekly", data_dir)
    assert len(m4.ids) == 359 and m4.test.shape == (359, 13) and (m4.horizon, m4.season) == (13, 1)
    hist = m4.histories()
    assert min(map(len, hist)) == 80 and max(map(len, hist)) == 2597
    f = np.stack([naive2(h, 13, 1) for h in hist])
    s = m4_scores(hist, m4.test, f, 1)
    assert (round(s["smape"], 3), round(s["mase"], 3), s["owa"]) == (9.161, 2.777, 1.0)


def write_m4(path: Path, rows: dict):
    width = max(len(v) for v in rows.values())
    frame = pd.DataFrame([list(v) + [np.nan] * (width - len(v)) for v in rows.values()], index=list(rows),
                         columns=[f"V{j + 2}" for j in range(width)])
    frame.index.name = "V1"
    frame.to_csv(path)


def test_a_users_own_files_load_and_bad_files_are_named(tmp_path):
    train = {"Y1": np.arange(1.0, 20.0), "Y2": np.arange(5.0, 12.0)}
    test = {"Y1": np.arange(20.0, 26.0), "Y2": np.arange(12.0, 18.0)}
    write_m4(tmp_path / "train.csv", train)
    write_m4(tmp_path / "test.csv", test)
    m4 = load_m4("Yearly", train_path=tmp_path / "train.csv", test_path=tmp_path / "test.csv")
    assert m4.ids == ["Y1", "Y2"] and [len(h) for h in m4.histories()] == [19, 7]
    assert list(m4.train.columns) == ["unique_id", "ds", "y"] and m4.train.ds.iloc[-1] == 6
    write_m4(tmp_path / "short.csv", {"Y1": np.arange(5.0), "Y2": np.arange(6.0)})
    with pytest.raises(ValueError, match="horizon of 6"):
        load_m4("Yearly", train_path=tmp_path / "train.csv", test_path=tmp_path / "short.csv")
    write_m4(tmp_path / "swapped.csv", {"Y2": np.arange(6.0), "Y1": np.arange(6.0)})
    with pytest.raises(ValueError, match="same series in the same order"):
        load_m4("Yearly", train_path=tmp_path / "train.csv", test_path=tmp_path / "swapped.csv")
    with pytest.raises(ValueError, match="frequency must be one of"):
        load_m4("Fortnightly", tmp_path)
    with pytest.raises(FileNotFoundError, match="XSEQ_DATA_DIR"):
        load_m4("Hourly", tmp_path)


def test_smape_and_mase_follow_the_competition_definitions():
    y = np.array([[100.0, 200.0], [1.0, 1.0]])
    f = np.array([[110.0, 180.0], [1.0, 3.0]])
    expected = [100 * (10 / 210 + 20 / 380), 100 * (0 + 2 / 4)]
    np.testing.assert_allclose(smape(y, f), expected)
    hist = [np.array([1.0, 3.0, 2.0, 6.0])]
    # forecast MAE 15; in-sample naive MAE with period 2: (1 + 3) / 2, with period 1: (2 + 1 + 4) / 3
    np.testing.assert_allclose(mase(hist, y[:1], f[:1], 2), [15 / 2])
    np.testing.assert_allclose(mase(hist, y[:1], f[:1], 1), [15 / (7 / 3)])
    with pytest.raises(ValueError, match=r"undefined for series \[0\]"):
        mase([np.full(5, 3.0)], y[:1], f[:1], 1)


def test_naive2_deseasonalises_only_seasonal_series():
    t = np.arange(24 * 30)
    profile = 1 + 0.5 * np.sin(2 * np.pi * np.arange(24) / 24)
    level = 100 + 0.01 * t
    seasonal = level * profile[t % 24]
    assert seasonality_test(seasonal, 24)
    np.testing.assert_allclose(seasonal_indices(seasonal, 24), profile / profile.mean(), rtol=2e-3)
    f = naive2(seasonal, 48, 24)
    # the last seasonally adjusted level, reseasonalised with the profile where the history leaves off
    future = np.arange(len(t), len(t) + 48)
    np.testing.assert_allclose(f, level[-1] * profile[future % 24], rtol=5e-3)
    rng = np.random.default_rng(0)
    noise = 50 + rng.standard_normal(24 * 30)
    assert not seasonality_test(noise, 24)
    np.testing.assert_allclose(naive2(noise, 48, 24), noise[-1])
    assert not seasonality_test(seasonal[:60], 24)  # under three seasons: never seasonal


def test_rules_give_every_frequency_its_settings():
    for freq, H, m in [("weekly", 13, 1), ("hourly", 48, 24), ("monthly", 18, 12)]:
        f = forecaster_from_recipe(RECIPES / "m4_weekly.yaml", rules={"H": H, "m": m})
        assert (f.horizon, f.season, f.lookback, f.patch_len, f.min_context, f.val_size) == (H, m, 8 * H, H, H, H)
    ens = model_from_recipe(RECIPES / "m4_weekly.yaml", rules={"H": 48, "m": 24})
    assert ens.lookbacks == [288, 384, 480] and ens.n_seeds == 2 and ens.base.loss == "mase"
    assert load_recipe(RECIPES / "m4_weekly.yaml")["data"]["frequency"] == "Weekly"


@pytest.mark.parametrize("bad,match", [("H +", "not an expression"), ("open('x')", "only numbers"),
                                       ("k * H", "unknown name 'k'"), ([1], "a number or an expression")])
def test_bad_rules_are_named(bad, match):
    with pytest.raises(ValueError, match=match):
        evaluate_rule(bad, H=13, m=1)


def test_unknown_ensemble_field_is_an_error(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("forecaster:\n  horizon: H\n  lookback: 4*H\nensemble:\n  seeds: 3\n")
    with pytest.raises(ValueError, match="unknown ensemble field"):
        load_recipe(bad)
