"""One global forecaster over panels of many series: mixed lengths (padding with an observed mask), the
losses of the field, series sampling, static and historical covariates, 2-process DDP, the ensemble."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
import torch

from xseq import ForecastEnsemble, XLSTMForecaster
from xseq.forecast.windows import EpochDraws, WindowData

TINY = dict(patch_len=4, d_model=16, layout="m", num_heads=2, batch_size=64, progress_bar=False, threads=1)


def long_panel(lengths, seed=0, period=12):
    """Seasonal series with their own level and scale, of the given lengths."""
    rng = np.random.default_rng(seed)
    parts = []
    for i, T in enumerate(lengths):
        t = np.arange(T)
        y = 10 + 5 * i + (1 + i % 3) * np.sin(2 * np.pi * t / period + i) + 0.2 * rng.standard_normal(T)
        parts.append(pd.DataFrame({"unique_id": f"s{i}", "ds": t, "y": y}))
    return pd.concat(parts, ignore_index=True)


def test_short_series_are_padded_and_forecast():
    y = long_panel([30, 45, 200, 400])
    with pytest.raises(ValueError, match="pass min_context < lookback"):
        XLSTMForecaster(6, 48, max_epochs=1, **TINY).fit(y)
    f = XLSTMForecaster(6, 48, min_context=8, max_epochs=2, val_size=6, **TINY).fit(y)
    assert f.net_.observed_mask
    fc = f.predict()
    assert len(fc) == 4 * 6 and np.isfinite(fc["y"]).all()
    # a history of 10 values (>= min_context) forecasts; 7 is refused with the rule named
    short = y[y.unique_id == "s0"].iloc[:10]
    others = y[y.unique_id != "s0"]
    fc = f.predict(y=pd.concat([short, others]))
    assert np.isfinite(fc["y"]).all()
    with pytest.raises(ValueError, match=r"min_context \(8\)"):
        f.predict(y=pd.concat([short.iloc[:7], others]))


def test_padded_windows_carry_the_first_value_and_a_mask():
    series = [np.arange(1.0, 6.0), np.arange(10.0, 30.0)]
    data = WindowData(series, None, lookback=8, horizon=2, min_context=3)
    starts = data.starts(0, np.array([3]))  # 3 observed values, 5 padded
    b = data.batch(torch.as_tensor(starts))
    np.testing.assert_allclose(b.past[0].numpy(), [1, 1, 1, 1, 1, 1, 2, 3])
    np.testing.assert_allclose(b.mask[0].numpy(), [0, 0, 0, 0, 0, 1, 1, 1])
    np.testing.assert_allclose(b.future[0].numpy(), [4, 5])
    b = data.batch(torch.as_tensor(data.starts(1, np.array([12]))))
    np.testing.assert_allclose(b.past[0].numpy(), np.arange(14.0, 22.0))
    assert b.mask[0].min() == 1 and int(b.series[0]) == 1


def test_stream_of_a_padded_model_equals_predict_on_every_prefix():
    y = long_panel([120], seed=3)
    f = XLSTMForecaster(6, 24, min_context=5, max_epochs=1, **TINY).fit(y)
    values = y["y"].to_numpy()
    stream = f.stream()
    outs = np.stack([stream.update(values[t:t + 1][None]).numpy()[0, 0].copy() for t in range(60)])
    assert np.isnan(outs[:4]).all() and np.isfinite(outs[4:]).all()
    for t in [4, 10, 23, 24, 59]:
        ref = f.predict(y=y.iloc[:t + 1])["y"].to_numpy()
        np.testing.assert_allclose(outs[t], ref, rtol=1e-5, atol=1e-5)


def test_series_sampling_draws_series_uniformly():
    pools = [np.arange(1000), np.arange(1000, 1010)]  # one long series, one short
    series = EpochDraws(pools, batch_size=100, sampling="series", seed=0, per_epoch=20000)
    windows = EpochDraws(pools, batch_size=100, sampling="windows", seed=0)
    share = lambda d: float((d.draws >= 1000).float().mean())
    assert 0.47 < share(series) < 0.53 and share(windows) == pytest.approx(10 / 1010)
    assert sorted(windows.draws.tolist()) == list(range(1010))  # every window once per epoch
    first = series.draws.clone()
    series.set_epoch(1)
    assert not torch.equal(first, series.draws)
    series.set_epoch(0)
    assert torch.equal(first, series.draws)  # an epoch is a function of (seed, epoch)


def test_ddp_ranks_split_every_global_batch():
    pools = [np.arange(37)]
    one = EpochDraws(pools, 8, "windows", 0)
    two = [EpochDraws(pools, 8, "windows", 0, rank=r, world=2) for r in range(2)]
    for b in range(len(one)):
        whole, n = one[b]
        parts = [d[b] for d in two]
        assert all(p[1] == n for p in parts)
        assert sorted(torch.cat([p[0] for p in parts]).tolist()) == sorted(whole.tolist())


@pytest.mark.parametrize("loss", ["mse", "mae", "mase", "smape", "pinball"])
def test_each_loss_trains(loss):
    y = long_panel([150, 180, 220])
    kw = dict(quantiles=[0.1, 0.9]) if loss == "pinball" else {}
    f = XLSTMForecaster(6, 24, loss=loss, max_epochs=3, scaling="mase", sampling="series", learning_rate=3e-3,
                        max_train_windows=1024, val_size=6, ridge=1e4, **kw, **TINY).fit(y)
    # the linear path starts at (almost) zero: the window mean; training must move the objective well below it
    assert f.best_val_loss_ < 0.8 * f.initial_val_loss_, (f.best_val_loss_, f.initial_val_loss_)
    fc = f.predict()
    assert np.isfinite(fc["y"]).all()
    if loss == "pinball":
        assert (fc["y_q0.1"] <= fc["y_q0.5"]).all() and (fc["y_q0.5"] <= fc["y_q0.9"]).all()


def test_mase_and_smape_losses_are_the_competition_measures():
    from xseq.forecast.losses import elementwise
    from xseq.forecast.metrics import mase, smape

    rng = np.random.default_rng(0)
    hist = [rng.normal(50, 5, 40), rng.normal(200, 30, 40)]
    y, f = rng.normal(50, 5, (2, 6)) + [[0], [150]], rng.normal(50, 5, (2, 6)) + [[0], [150]]
    shift, scale = np.array([3.0, -2.0]), np.array([2.0, 7.0])
    naive = np.array([np.abs(np.diff(h)).mean() for h in hist])
    z = lambda v: torch.as_tensor((v - shift[:, None]) / scale[:, None])
    kw = dict(shift=torch.as_tensor(shift), scale=torch.as_tensor(scale), mase_scale=torch.as_tensor(naive))
    got_mase = elementwise("mase", z(f)[..., None], z(y), **kw).mean(1).numpy()
    got_smape = elementwise("smape", z(f)[..., None], z(y), **kw).mean(1).numpy() * 100
    np.testing.assert_allclose(got_mase, mase(hist, y, f, 1), rtol=1e-10)
    np.testing.assert_allclose(got_smape, smape(y, f), rtol=1e-10)


def leading_indicator_panel(S=6, T=400, lead=3, seed=1):
    """Long frames: y_t = x_{t-lead} for every series' own covariate x (random signs)."""
    rng = np.random.default_rng(seed)
    x = rng.choice([-1.0, 1.0], size=(S, T + lead))
    ys, xs = [], []
    for i in range(S):
        ys.append(pd.DataFrame({"unique_id": f"s{i}", "ds": np.arange(T), "y": x[i, :T]}))
        xs.append(pd.DataFrame({"unique_id": f"s{i}", "ds": np.arange(T), "x": x[i, lead:]}))
    return pd.concat(ys, ignore_index=True), pd.concat(xs, ignore_index=True)


def head(frame, n):
    return frame[frame.ds < n]


def test_historical_covariate_that_leads_the_target_is_learned():
    """y_t = x_{t-3} for a covariate x known only in the past: with it the next 3 steps are known."""
    y, X = leading_indicator_panel()
    common = dict(max_epochs=6, learning_rate=3e-3, dropout=0.0, val_size=0.2, **TINY)
    with_x = XLSTMForecaster(3, 24, hist_exog=["x"], **common).fit(head(y, 300), head(X, 300))
    without = XLSTMForecaster(3, 24, **common).fit(head(y, 300))
    assert with_x.n_future_ == 0 and with_x.covariate_names_ == ["x"]
    err_with = with_x.cross_validate(y, 90, X=X).metrics.loc["all", "mse"]
    err_without = without.cross_validate(y, 90).metrics.loc["all", "mse"]
    assert err_with < 0.5 * err_without, (err_with, err_without)
    # predict needs X over the history only (not the horizon) for a historical covariate
    assert np.isfinite(with_x.predict(y=y, X=X)["y"]).all() and np.isfinite(with_x.predict()["y"]).all()
    with pytest.raises(ValueError, match="X must cover"):
        with_x.predict(y=y)
    with pytest.raises(ValueError, match="hist_exog names"):
        XLSTMForecaster(3, 24, hist_exog=["z"], **common).fit(head(y, 300), head(X, 300))


DDP_SCRIPT = textwrap.dedent('''
    import os, sys
    import numpy as np
    sys.path.insert(0, {root!r})
    from tests.forecast.test_global import long_panel, TINY
    from xseq import XLSTMForecaster
    devices = int(sys.argv[1])
    y = long_panel([150, 180, 220, 260], seed=4)
    f = XLSTMForecaster(6, 24, loss="mase", scaling="mase", sampling="series", max_train_windows=1024,
                        max_epochs=3, dropout=0.0, val_size=6, min_context=12, learning_rate=3e-3, ridge=1e4,
                        devices=devices, strategy="ddp" if devices > 1 else "auto",
                        **{{**TINY, "batch_size": 32}}).fit(y)
    if int(os.environ.get("LOCAL_RANK", "0")) == 0:
        np.save(sys.argv[2], np.concatenate([f.predict()["y"].to_numpy(), [f.best_epoch_, f.best_val_loss_,
                                                                          f.initial_val_loss_]]))
''')


@pytest.mark.slow
def test_ddp_two_cpu_processes_match_one(tmp_path):
    """Lightning DDP (gloo, 2 CPU processes, each half of every global batch of 32) ends with the forecasts and
    validation loss of one process with the same global batch (dropout off: its masks differ by process)."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    script = tmp_path / "fit.py"
    script.write_text(DDP_SCRIPT.format(root=root))
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    out = {}
    for devices in (1, 2):
        path = tmp_path / f"out{devices}.npy"
        run = subprocess.run([sys.executable, str(script), str(devices), str(path)], capture_output=True, text=True,
                             env=env, cwd=tmp_path, timeout=600)
        assert run.returncode == 0, run.stderr[-3000:]
        out[devices] = np.load(path)
    best_epoch, best, initial = out[1][-3:]
    assert best_epoch >= 0 and best < 0.8 * initial  # training, not the initial weights, gave the forecasts
    np.testing.assert_allclose(out[2], out[1], rtol=1e-4, atol=1e-4)


def periodic_or_antiperiodic(S=40, T=200, P=8, seed=2):
    """Each series repeats its own random pattern of P values (level 5): "periodic" ones as they are,
    "antiperiodic" ones with the sign flipped every P steps. A window of P values looks the same for both
    kinds; the next P values are the window again or its negative: only the static kind tells which."""
    rng = np.random.default_rng(seed)
    kinds = np.array(["periodic", "antiperiodic"] * (S // 2))
    frames = []
    for i in range(S):
        p, t = rng.standard_normal(P), np.arange(T)
        sign = np.ones(T) if kinds[i] == "periodic" else (-1.0) ** (t // P)
        frames.append(pd.DataFrame({"unique_id": f"s{i}", "ds": t,
                                    "y": 5 + sign * p[t % P] + 0.1 * rng.standard_normal(T)}))
    static = pd.DataFrame({"kind": kinds, "noise": rng.standard_normal(S)}, index=[f"s{i}" for i in range(S)])
    return pd.concat(frames, ignore_index=True), static


def test_static_covariate_that_decides_the_future_is_learned():
    """Trained with and without the static kind the same way, the backtest error of the last 40 steps must fall
    below a quarter (measured: 0.023 against 0.65)."""
    y, static = periodic_or_antiperiodic()
    train = head(y, 160)
    with_s = XLSTMForecaster(8, 8, max_epochs=6, learning_rate=3e-3, dropout=0.0, val_size=8, patience=20, **TINY)
    without = clone_params(with_s)
    with_s.fit(train, static=static)
    without.fit(train)
    assert with_s.net_.n_static == 3  # kind one-hot (2) + the standardised number
    err_with = with_s.cross_validate(y, 33).metrics.loc["all", "mse"]
    err_without = without.cross_validate(y, 33).metrics.loc["all", "mse"]
    assert err_with < 0.25 * err_without, (err_with, err_without)
    assert np.isfinite(with_s.predict()["y"]).all()
    # bad static input is named
    with pytest.raises(ValueError, match="no row for series"):
        clone_params(with_s).fit(train, static=static.iloc[1:])
    with pytest.raises(ValueError, match="not in y"):
        clone_params(with_s).fit(train, static=pd.concat([static, static.iloc[:1].rename(index={"s0": "zz"})]))
    with pytest.raises(ValueError, match="missing values"):
        clone_params(with_s).fit(train, static=static.assign(noise=np.nan))


def clone_params(f):
    from sklearn.base import clone
    return clone(f)


def test_ensemble_is_the_median_of_its_members_and_saves(tmp_path):
    y = long_panel([150, 180, 220])
    base = XLSTMForecaster(6, 24, max_epochs=1, val_size=6, **TINY)
    ens = ForecastEnsemble(base, lookbacks=[12, 24], n_seeds=2).fit(y)
    assert [(m.lookback, m.seed) for m in ens.members_] == [(12, 0), (12, 1), (24, 0), (24, 1)]
    assert len(ens.member_times_) == 4 and ens.train_time_ > 0
    got = ens.predict()
    stacked = np.stack([m.predict()["y"].to_numpy() for m in ens.members_])
    np.testing.assert_allclose(got["y"].to_numpy(), np.median(stacked, axis=0))
    bt = ens.cross_validate(y, n_windows=3)
    each = np.stack([m.cross_validate(y, 3).forecasts["forecast"].to_numpy() for m in ens.members_])
    np.testing.assert_allclose(bt.forecasts["forecast"].to_numpy(), np.median(each, axis=0))
    err = bt.forecasts["forecast"] - bt.forecasts["y"]
    assert bt.metrics.loc["all", "mae"] == pytest.approx(float(err.abs().mean()))
    ens.save(tmp_path / "ens.pt")
    again = ForecastEnsemble.load(tmp_path / "ens.pt")
    pd.testing.assert_frame_equal(again.predict(), got)
    with pytest.raises(ValueError, match="lookbacks"):
        ForecastEnsemble(base, lookbacks=[0]).fit(y)


@pytest.mark.parametrize("learning_rate", [1e-9, 3e-3])
def test_refit_trains_again_on_every_window_with_the_selection(learning_rate):
    """refit=True: the selected penalty and epoch count, applied to all windows (validation part included).
    A learning rate too small to help keeps the linear path (epoch -1): the refit is its closed form."""
    from xseq.forecast.baselines import NormalEquations

    y = long_panel([150, 180, 220])
    common = dict(max_epochs=3, val_size=6, ridge=1e4 if learning_rate > 1e-6 else "auto", scaling="standard",
                  learning_rate=learning_rate, dropout=0.0, **TINY)
    once = XLSTMForecaster(6, 24, **common).fit(y)
    again = XLSTMForecaster(6, 24, refit=True, **common).fit(y)
    assert again.best_epoch_ == once.best_epoch_ and again.ridge_ == once.ridge_
    if learning_rate < 1e-6:
        assert once.best_epoch_ == -1
        eq = NormalEquations(24, 6)
        for i, s in enumerate(y.groupby("unique_id", sort=False)["y"]):
            v = (s[1].to_numpy() - again.shift_[i]) / again.scale_[i]  # scaled on the whole history
            o = np.arange(24, len(v) - 6 + 1)
            eq.add(v[o[:, None] + np.arange(-24, 0)], v[o[:, None] + np.arange(6)])
        np.testing.assert_allclose(again.net_.skip.weight.detach().numpy().T, eq.solve(again.ridge_), atol=1e-4)
        assert not np.allclose(once.net_.skip.weight.detach().numpy(), again.net_.skip.weight.detach().numpy())
    else:
        assert once.best_epoch_ >= 0 and again.n_epochs_ == once.best_epoch_ + 1
    assert not np.allclose(once.predict()["y"], again.predict()["y"])


@pytest.mark.parametrize("params,match", [
    (dict(min_context=0), "min_context"), (dict(min_context=25), "min_context"), (dict(sampling="uniform"), "sampling"),
    (dict(scaling="minmax"), "scaling"), (dict(loss="pinball"), "pass quantiles"), (dict(season=0), "season"),
    (dict(max_train_windows=-5), "max_train_windows"), (dict(hist_exog="x"), "hist_exog"),
    (dict(gradient_clip_val=0), "gradient_clip_val"), (dict(refit="yes"), "refit"), (dict(deep=1), "deep"),
    (dict(deep=False, quantiles=[0.1]), "quantiles need deep"), (dict(devices=2, batch_size=63), "divisible"),
])
def test_bad_global_params_are_named(params, match):
    with pytest.raises(ValueError, match=match):
        XLSTMForecaster(6, 24, **{**TINY, **params}).fit(long_panel([150, 180]))
