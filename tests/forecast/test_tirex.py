"""TiRex on xseq's ops against tirex-ts itself, on random-weight checkpoints this test writes in tirex-ts's own
format (nothing is downloaded): all quantiles, several horizons and contexts, NaN gaps, a constant series and a
batch of mixed lengths; and the checkpoint reader's errors."""
import pickle

import numpy as np
import pandas as pd
import pytest
import torch

from xseq import TiRexForecaster
from xseq.forecast.tirex import TiRexConfig, load_tirex, read_checkpoint, save_tirex

tirex_ts = pytest.importorskip("tirex.models.tirex", reason="tirex-ts (the test extra) is not installed")

RELEASED = TiRexConfig()  # 12 blocks, d 512, 4 heads, patch 32, context 2048
SMALL = [TiRexConfig(patch_size=16, num_blocks=2, d_model=64, num_heads=2, input_ff_dim=128, context_length=256),
         TiRexConfig(patch_size=32, num_blocks=3, d_model=96, num_heads=3, input_ff_dim=192, context_length=512)]


def write_random_checkpoint(cfg: TiRexConfig, path, seed: int = 0):
    """A TiRexZero of tirex-ts with every parameter drawn here, saved as tirex-ts's Lightning checkpoint."""
    torch.manual_seed(seed)
    hp = cfg.to_hyper_parameters()
    model = tirex_ts.TiRexZero(backend="torch", model_config=hp["model_config"], train_ctx_len=hp["train_ctx_len"])
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm_slstm.weight") or name.endswith("norm_ffn.weight") or name == "out_norm.weight":
                p.copy_(1 + 0.1 * torch.randn_like(p))
            elif name.endswith("group_norm.weight"):
                p.copy_(0.1 * torch.randn_like(p))
            elif name.endswith("_bias_") or name.endswith(".bias"):
                p.copy_(0.5 * torch.randn_like(p))
            else:  # weights: fan-in scaling (headwise and recurrent kernels read one head's Dh inputs)
                fan_in = cfg.head_dim if p.dim() == 3 else p.shape[-1]
                p.copy_(torch.randn_like(p) / fan_in ** 0.5)
    torch.save({"hyper_parameters": hp, "state_dict": {"block_stack." + k: v for k, v in model.state_dict().items()}},
               path)
    return path


def tirex_ts_model(path, float32_cell: bool):
    model = tirex_ts.TiRexZero.from_pretrained(str(path), backend="torch", device="cpu")
    if float32_cell:  # the stock torch backend rounds the recurrence to bf16; run the same loop in float32
        from tirex.models.slstm.cell import sLSTMCell

        def impl_float32(cell, x, state):
            c = cell.config
            bias = cell._bias_.float().reshape(c.num_heads, c.num_gates, c.head_dim).permute(1, 0, 2).reshape(-1)
            return cell._impl_forward_torch(x.float().view(x.shape[0], x.shape[1], -1), state.float(),
                                            cell._recurrent_kernel_.float(), bias)

        for block in model.blocks:
            cell = block.slstm_layer.slstm_cell
            cell._impl_torch = impl_float32.__get__(cell, sLSTMCell)
    return model.eval()


def contexts(cfg: TiRexConfig, seed: int = 1):
    """Series of 20, 500 and 3000 values (trend + two seasons + noise, each with its own level and scale), one
    with NaN gaps, a constant one; left-padded with NaN into one batch of mixed lengths."""
    rng = np.random.default_rng(seed)
    series = []
    for T, level, amp in [(20, 3.0, 1.0), (500, -40.0, 8.0), (3000, 1000.0, 50.0), (700, 5.0, 2.0)]:
        t = np.arange(T)
        series.append(level + amp * (np.sin(2 * np.pi * t / 24) + 0.5 * np.sin(2 * np.pi * t / 168)
                                     + 0.002 * t + 0.3 * rng.standard_normal(T)))
    series[3][100:160] = np.nan
    series[3][-40:-30] = np.nan
    series.append(np.full(300, 7.5))
    width = max(len(s) for s in series)
    batch = np.full((len(series), width), np.nan)
    for i, s in enumerate(series):
        batch[i, width - len(s):] = s
    return torch.tensor(batch, dtype=torch.float32), series


def series_scale(s: np.ndarray, cfg: TiRexConfig) -> float:
    """The series' std over what the model reads (its own scale where that is 0)."""
    w = s[-cfg.context_length:]
    sd = float(np.nanstd(w))
    return sd if sd > 0 else abs(float(np.nanmean(w))) + 1e-5


@pytest.mark.slow
@pytest.mark.parametrize("which", ["released", "small0", "small1"])
def test_same_forecasts_as_tirex_ts(tmp_path, which):
    cfg = RELEASED if which == "released" else SMALL[int(which[-1])]
    path = write_random_checkpoint(cfg, tmp_path / "model.ckpt", seed=len(which))
    ours = load_tirex(path)
    assert sum(p.numel() for p in ours.parameters()) == sum(
        p.numel() for p in tirex_ts.TiRexZero(backend="torch", **cfg.to_hyper_parameters()).parameters())
    if which == "released":
        assert sum(p.numel() for p in ours.parameters()) == 35_291_200
    ref32, stock = tirex_ts_model(path, True), tirex_ts_model(path, False)
    ctx, series = contexts(cfg)
    scales = torch.tensor([series_scale(s, cfg) for s in series])[:, None, None]
    for H in (32, 64, 100):
        got = ours.forecast(ctx, H)
        want32, _ = ref32._forecast_quantiles(ctx, prediction_length=H)
        want, _ = stock._forecast_quantiles(ctx, prediction_length=H)
        assert got.shape == want32.shape == (len(series), H, 9)
        err32 = ((got - want32).abs() / scales).amax(dim=(1, 2))
        err_stock = ((got - want).abs() / scales).amax(dim=(1, 2))
        assert (err32 < 1e-5).all(), (H, err32)
        assert (err_stock < 5e-2).all(), (H, err_stock)


def test_checkpoint_round_trip_and_layout(tmp_path):
    cfg = SMALL[0]
    path = write_random_checkpoint(cfg, tmp_path / "a.ckpt")
    net = load_tirex(path)
    save_tirex(net, tmp_path / "b.ckpt")
    a = torch.load(path, weights_only=True)
    b = torch.load(tmp_path / "b.ckpt", weights_only=True)
    assert a["hyper_parameters"] == b["hyper_parameters"]
    assert sorted(a["state_dict"]) == sorted(b["state_dict"])
    for k, v in a["state_dict"].items():
        torch.testing.assert_close(b["state_dict"][k], v, rtol=0, atol=1e-7, msg=k)
    # the projection stored as "fgate" drives the cell's input gate (slot 0 of i, f, z, o)
    stored = a["state_dict"]["block_stack.blocks.0.slstm_layer.fgate.weight"]
    H, Dh = cfg.num_heads, cfg.head_dim
    torch.testing.assert_close(net.blocks[0].slstm.W[0].detach(), stored.reshape(H, Dh, Dh).transpose(1, 2))


def test_bad_checkpoints_are_named(tmp_path):
    cfg = SMALL[0]
    good = torch.load(write_random_checkpoint(cfg, tmp_path / "good.ckpt"), weights_only=True)

    def write(obj, name):
        torch.save(obj, tmp_path / name)
        return tmp_path / name

    with pytest.raises(ValueError, match="not a file"):
        read_checkpoint(tmp_path / "nothing.ckpt")
    (tmp_path / "text.ckpt").write_text("hello")
    with pytest.raises(ValueError, match="not a readable torch checkpoint"):
        read_checkpoint(tmp_path / "text.ckpt")
    raw = (tmp_path / "good.ckpt").read_bytes()
    (tmp_path / "cut.ckpt").write_bytes(raw[:len(raw) // 2])
    with pytest.raises(ValueError, match="cut.ckpt"):
        read_checkpoint(tmp_path / "cut.ckpt")
    with pytest.raises(ValueError, match="not a TiRex checkpoint"):
        read_checkpoint(write({"weights": good["state_dict"]}, "other.ckpt"))
    hp = {**good["hyper_parameters"], "model_config": {**good["hyper_parameters"]["model_config"], "dropout": 0.1}}
    with pytest.raises(ValueError, match=r"\['dropout'\].*not support"):
        read_checkpoint(write({**good, "hyper_parameters": hp}, "field.ckpt"))
    sd = dict(good["state_dict"])
    del sd["block_stack.out_norm.weight"]
    sd["block_stack.extra.weight"] = torch.zeros(3)
    with pytest.raises(ValueError, match=r"missing \['out_norm.weight'\], extra \['extra.weight'\]"):
        read_checkpoint(write({**good, "state_dict": sd}, "tensors.ckpt"))
    sd = dict(good["state_dict"])
    sd["block_stack.blocks.1.ffn.proj_up.weight"] = torch.zeros(5, 5)
    with pytest.raises(ValueError, match="wrong shape"):
        load_tirex(write({**good, "state_dict": sd}, "shape.ckpt"))

    class Payload:  # a pickle that would run code when loaded
        def __reduce__(self):
            return (print, ("pwned",))

    (tmp_path / "evil.ckpt").write_bytes(pickle.dumps({"hyper_parameters": Payload(), "state_dict": {}}))
    with pytest.raises(ValueError, match="refused"):
        read_checkpoint(tmp_path / "evil.ckpt")
    net = load_tirex(tmp_path / "good.ckpt")
    with pytest.raises(ValueError, match="prediction_length"):
        net.forecast(torch.zeros(1, 10), 0)


# ---------------------------------------------------------------------------------------- the estimator

@pytest.fixture(scope="module")
def small_ckpt(tmp_path_factory):
    return write_random_checkpoint(SMALL[0], tmp_path_factory.mktemp("tirex") / "small.ckpt", seed=3)


def frame(T=400, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(T)
    idx = pd.date_range("2024-01-01", periods=T, freq="h")
    return pd.DataFrame({"load": 50 + 10 * np.sin(2 * np.pi * t / 24) + rng.standard_normal(T),
                         "temp": 5 + 3 * np.sin(2 * np.pi * t / 168) + 0.5 * rng.standard_normal(T)}, index=idx)


def test_zero_shot_forecaster_matches_the_net(small_ckpt):
    y = frame()
    f = TiRexForecaster(small_ckpt, horizon=40, quantiles=[0.1, 0.9], progress_bar=False).fit(y)
    fc = f.predict()
    assert list(fc.columns) == ["load", "temp", "load_q0.1", "temp_q0.1", "load_q0.9", "temp_q0.9"]
    assert fc.index[0] == y.index[-1] + pd.Timedelta(hours=1) and len(fc) == 40
    net = load_tirex(small_ckpt)
    want = net.forecast(torch.tensor(y.to_numpy().T, dtype=torch.float32), 40)  # (2, 40, 9)
    np.testing.assert_allclose(fc["load"], want[0, :, 4], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(fc["temp_q0.9"], want[1, :, 8], rtol=1e-5, atol=1e-5)
    # no refit: a longer history forecasts from its own end; long format gives the same numbers
    longer = f.predict(y=pd.concat([y, frame(T=430).iloc[400:]]))
    assert longer.index[0] == y.index[-1] + pd.Timedelta(hours=31)
    long_y = y.rename_axis("ds").reset_index().melt(id_vars="ds", var_name="unique_id", value_name="y")
    g = TiRexForecaster(small_ckpt, horizon=40, progress_bar=False).fit(long_y[["unique_id", "ds", "y"]])
    np.testing.assert_allclose(g.predict()["y"].to_numpy()[:40], fc["load"].to_numpy(), rtol=1e-6)
    bt = f.cross_validate(y, n_windows=3, step=10)
    last = bt.forecasts[(bt.forecasts.cutoff == bt.forecasts.cutoff.max()) & (bt.forecasts.unique_id == "load")]
    np.testing.assert_allclose(last["forecast"], f.predict(y=y.iloc[:-40])["load"], rtol=1e-5)
    assert bt.metrics.loc["all", "mae"] > 0


def test_missing_values_are_masked_only_when_asked(small_ckpt):
    y = frame()
    y.iloc[100:110, 0] = np.nan
    with pytest.raises(ValueError, match="missing value"):
        TiRexForecaster(small_ckpt, horizon=8, progress_bar=False).fit(y)
    f = TiRexForecaster(small_ckpt, horizon=8, fill="mask", progress_bar=False).fit(y)
    assert np.isfinite(f.predict().to_numpy()).all()


@pytest.mark.parametrize("params,match", [(dict(horizon=0), "horizon"), (dict(quantiles=[0.15]), "not among"),
                                          (dict(fill="bfill"), "fill"), (dict(max_epochs=-1), "max_epochs"),
                                          (dict(max_train_windows=0), "max_train_windows")])
def test_bad_parameters_are_named(small_ckpt, params, match):
    with pytest.raises(ValueError, match=match):
        TiRexForecaster(small_ckpt, **{"horizon": 8, **params}).fit(frame())


def test_stream_equals_predict_after_every_observation(small_ckpt):
    y = frame(T=300)
    f = TiRexForecaster(small_ckpt, horizon=20, quantiles=[0.2], progress_bar=False).fit(y.iloc[:50])
    stream = f.stream()
    values = y.to_numpy()
    for t in range(300):
        out = stream.update(values[t:t + 1]).numpy()[0]  # (2, 20, 2)
        if t in (0, 1, 15, 16, 255, 256, 299):
            fc = f.predict(y=y.iloc[:t + 1]) if t >= 2 else None
            if fc is None:
                continue
            for j, name in enumerate(["load", "temp"]):
                scale = float(np.std(values[max(0, t + 1 - 256):t + 1, j])) or 1.0
                assert np.abs(out[j, :, 0] - fc[name].to_numpy()).max() / scale < 1e-5
                assert np.abs(out[j, :, 1] - fc[f"{name}_q0.2"].to_numpy()).max() / scale < 1e-5


def test_fine_tuning_lowers_validation_loss_and_saves(small_ckpt, tmp_path):
    y = frame(T=600)
    f = TiRexForecaster(small_ckpt, horizon=16, max_epochs=3, learning_rate=1e-3, batch_size=16,
                        max_train_windows=256, val_size=48, progress_bar=False).fit(y)
    assert f.best_val_loss_ < f.initial_val_loss_ and f.best_epoch_ >= 0
    zero = TiRexForecaster(small_ckpt, horizon=16, progress_bar=False).fit(y)
    assert not np.allclose(f.predict().to_numpy(), zero.predict().to_numpy())
    f.save(tmp_path / "tuned.pt")
    again = TiRexForecaster.load(tmp_path / "tuned.pt")
    pd.testing.assert_frame_equal(again.predict(), f.predict())
    assert again.best_val_loss_ == f.best_val_loss_


def test_cli_pretrained_writes_forecast_and_plot(small_ckpt, tmp_path):
    from xseq.forecast import cli

    y = frame(T=500).rename_axis("date")
    y.to_csv(tmp_path / "series.csv")
    out, plot = tmp_path / "forecast.csv", tmp_path / "forecast.png"  # --out is the folder for both
    result = cli.main(["--pretrained", str(small_ckpt), "--data", str(tmp_path / "series.csv"), "--horizon", "24",
                       "--out", str(tmp_path)])
    assert set(result) == {"TiRex", "seasonal naive"}
    fc = pd.read_csv(out, index_col=0, parse_dates=True)
    assert len(fc) == 24 and {"load", "load_q0.1", "load_q0.9"} <= set(fc.columns)
    assert plot.stat().st_size > 10_000
    tuned = cli.main(["--pretrained", str(small_ckpt), "--data", str(tmp_path / "series.csv"), "--horizon", "24",
                      "--finetune", "1", "--out", str(tmp_path)])
    assert np.isfinite(tuned["TiRex"]).all()
    with pytest.raises(SystemExit, match="needs --data"):
        cli.main(["--pretrained", str(small_ckpt)])


def test_stream_equals_every_prefix_of_a_2000_step_series(small_ckpt):
    """All 1,983 prefixes of a 2,000-step series (2 values and more) at once: the stream after observation t
    against one batched cross_validate whose window ending at t reads the same prefix (1e-5 of the series' std)."""
    T, H = 2000, 16
    y = frame(T=T, seed=5)[["load"]]
    f = TiRexForecaster(small_ckpt, horizon=H, progress_bar=False).fit(y.iloc[:100])
    stream = f.stream()
    values = y.to_numpy()
    outs = np.stack([stream.update(values[t:t + 1]).numpy()[0, 0].copy() for t in range(T - H)])
    bt = f.cross_validate(y, n_windows=T - H - 1, step=1).forecasts  # origins 2 ... T - H
    ref = bt["forecast"].to_numpy().reshape(T - H - 1, H)
    err = np.abs(outs[1:] - ref).max(axis=1) / float(np.std(values))  # outs[t]: the prefix of t + 1 values
    assert err.max() < 1e-5, (err.argmax(), err.max())
