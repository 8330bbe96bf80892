"""`xseq forecast`: train on a CSV, backtest on its last part beside two baselines, write the forecast past
the end of the data as CSV and a PNG of forecast vs actual. Without --data it runs the quickstart on the
monthly Mauna Loa CO2 series that ships with statsmodels (offline)."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ..common.plots import figure
from .baselines import NormalEquations, predict_centred_linear, seasonal_naive
from .estimator import XLSTMForecaster
from .frames import read_panel


def co2_monthly() -> pd.DataFrame:
    import statsmodels.api as sm

    weekly = sm.datasets.co2.load_pandas().data["co2"]
    monthly = weekly.resample("MS").mean()
    missing = int(monthly.isna().sum())
    if missing:
        print(f"co2: {missing} month(s) without any weekly reading, filled by linear interpolation")
        monthly = monthly.interpolate()
    monthly.index.freq = "MS"
    return pd.DataFrame({"co2": monthly})


def parse(argv=None):
    p = argparse.ArgumentParser(prog="xseq forecast", description=__doc__)
    p.add_argument("--data", help="CSV file, one time column and one column per series (default: CO2 quickstart)")
    p.add_argument("--time-col", default="date")
    p.add_argument("--target", nargs="+", help="columns to forecast (default: all but the time column)")
    p.add_argument("--horizon", type=int, default=None, help="steps ahead (quickstart: 12)")
    p.add_argument("--lookback", type=int, default=None, help="past steps the model reads (default: 4 x horizon)")
    p.add_argument("--season", type=int, default=None, help="season length of the seasonal-naive baseline")
    p.add_argument("--test", type=int, default=None, help="steps at the end held out for the backtest")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--fill", choices=["ffill", "interpolate", "zero"], default=None)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="outputs/forecast.csv")
    p.add_argument("--plot", default="outputs/forecast.png")
    p.add_argument("--pretrained", metavar="CKPT",
                   help="a TiRex checkpoint (model.ckpt, from NX-AI or fine-tuned; its licence applies): forecast "
                        "with it zero-shot instead of training an xLSTM (needs --data)")
    p.add_argument("--finetune", type=int, default=0, metavar="EPOCHS",
                   help="with --pretrained: fine-tune the checkpoint on the data for this many epochs (0: zero-shot)")
    return p.parse_args(argv)


def main(argv=None) -> dict:
    args = parse(argv)
    if args.pretrained and args.data is None:
        raise SystemExit("xseq forecast: error: --pretrained needs --data (a CSV of your series)")
    if args.data is None:
        y, name = co2_monthly(), "Mauna Loa CO2, monthly (statsmodels)"
        horizon, season, test = args.horizon or 12, args.season or 12, args.test or 96
    else:
        from ..datasets import load_csv

        y = load_csv(args.data, time_col=args.time_col, columns=args.target)
        name = Path(args.data).name
        horizon = args.horizon or 24
        season = args.season or 24
        test = args.test or max(horizon, len(y) // 10)
    if args.pretrained:
        return run_pretrained(args, y, name, horizon, season, test)
    lookback = args.lookback or 4 * horizon
    read_panel(y, fill=args.fill)  # validate before anything is trained
    train = y.iloc[:-test]
    model = XLSTMForecaster(horizon, lookback, patch_len=max(1, min(16, lookback // 8)), max_epochs=args.epochs,
                            fill=args.fill, threads=args.threads, seed=args.seed, batch_size=64)
    t0 = time.perf_counter()
    model.fit(train)
    fit_s = time.perf_counter() - t0

    n_windows = test - horizon + 1
    bt = model.cross_validate(y, n_windows=n_windows, step=1)
    f = bt.forecasts
    values = read_panel(y, fill=args.fill).series
    # baselines on the same windows: seasonal naive, and the closed-form centred linear map fitted on the
    # training part (ridge 1e-3 per window), each series scaled as the forecaster scales it
    eq = NormalEquations(lookback, horizon)
    for i, s in enumerate(values):
        z = (s.values[:-test] - model.shift_[i]) / model.scale_[i]
        origins = np.arange(lookback, len(z) - horizon + 1)
        eq.add(z[origins[:, None] + np.arange(-lookback, 0)], z[origins[:, None] + np.arange(horizon)])
    W = eq.solve(1e-3)
    naive_err, lin_err = [], []
    for i, s in enumerate(values):
        origins = len(s.values) - horizon - np.arange(n_windows - 1, -1, -1)
        past = s.values[origins[:, None] + np.arange(-lookback, 0)]
        future = s.values[origins[:, None] + np.arange(horizon)]
        naive_err.append((seasonal_naive(past, horizon, season) - future).ravel())
        z = predict_centred_linear((past - model.shift_[i]) / model.scale_[i], W)
        lin_err.append((z * model.scale_[i] + model.shift_[i] - future).ravel())
    ours = (f["forecast"] - f["y"]).to_numpy()
    result = {"xLSTM": _scores(ours), "linear (closed form)": _scores(np.concatenate(lin_err)),
              "seasonal naive": _scores(np.concatenate(naive_err))}
    print(f"\n{name}: {len(y)} steps, horizon {horizon}, lookback {lookback}; backtest on the last {test} steps "
          f"({n_windows} windows, stride 1); trained {model.n_epochs_} epochs in {fit_s:.1f} s "
          f"on {args.threads} thread(s)")
    for k, (mse, mae) in result.items():
        print(f"  {k:<22s} MSE {mse:10.4f}   MAE {mae:8.4f}")
    print(f"  validation MSE (scaled data): {model.initial_val_mse_:.4f} for the linear path the network starts "
          f"from (ridge {model.ridge_:g}), {model.best_val_mse_:.4f} after training")

    future = model.predict(y=y)  # from the end of all data, no refit
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    future.to_csv(args.out)
    print(f"  forecast of the {horizon} steps after the data: {args.out}")
    _plot(args.plot, y, f, horizon, name)
    return result


def run_pretrained(args, y: pd.DataFrame, name: str, horizon: int, season: int, test: int) -> dict:
    """TiRex zero-shot (or fine-tuned): backtest on the last `test` steps from origins `horizon` apart beside
    the seasonal naive, the future forecast as CSV (median and the 10-90% band) and a plot with the band."""
    from .pretrained import TiRexForecaster

    model = TiRexForecaster(args.pretrained, horizon, quantiles=[0.1, 0.9], fill=args.fill, threads=args.threads,
                            max_epochs=args.finetune, seed=args.seed, progress_bar=args.finetune > 0)
    t0 = time.perf_counter()
    model.fit(y.iloc[:-test] if args.finetune else y)
    fit_s = time.perf_counter() - t0
    n_windows = max(1, (test - horizon) // horizon + 1)
    f = model.cross_validate(y, n_windows=n_windows, step=horizon).forecasts
    naive_err = []
    for s in read_panel(y, fill=args.fill).series:
        origins = len(s.values) - horizon - horizon * np.arange(n_windows - 1, -1, -1)
        past = s.values[origins[:, None] + np.arange(-season, 0)]
        future = s.values[origins[:, None] + np.arange(horizon)]
        naive_err.append((seasonal_naive(past, horizon, season) - future).ravel())
    result = {"TiRex": _scores((f["forecast"] - f["y"]).to_numpy()),
              "seasonal naive": _scores(np.concatenate(naive_err))}
    how = f"fine-tuned {model.n_epochs_} epochs" if args.finetune else "zero-shot"
    print(f"\n{name}: {len(y)} steps, horizon {horizon}; TiRex {how} ({fit_s:.1f} s), backtest on the last {test} "
          f"steps ({n_windows} windows, {horizon} apart)")
    for k, (mse, mae) in result.items():
        print(f"  {k:<22s} MSE {mse:10.4f}   MAE {mae:8.4f}")
    future = model.predict(y=y)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    future.to_csv(args.out)
    print(f"  forecast of the {horizon} steps after the data (median, q0.1, q0.9): {args.out}")
    _plot_band(args.plot, y, future, f, name)
    return result


def _plot_band(path, y: pd.DataFrame, future: pd.DataFrame, backtest: pd.DataFrame, name: str) -> None:
    col = y.columns[0]
    H = len(future)
    with figure(path, f"{name}: {col}, TiRex forecast of the next {H} steps", "time", col, size=(10, 3.8),
                dpi=120) as (_, ax):
        tail = y[col].iloc[-8 * H:]
        ax.plot(tail.index, tail.to_numpy(), color="0.35", lw=1.2, label="actual")
        bt = backtest[(backtest["unique_id"] == col) & (backtest["ds"] >= tail.index[0])]
        ax.plot(bt["ds"], bt["forecast"], color="C0", lw=1, ls="--", label="backtest median")
        ax.fill_between(future.index, future[f"{col}_q0.1"], future[f"{col}_q0.9"], color="C3", alpha=0.25,
                        label="10-90% band")
        ax.plot(future.index, future[col], color="C3", lw=1.4, label="forecast (median)")
        ax.legend(loc="upper left", fontsize=8)
    print(f"  plot: {path}")


def _scores(err: np.ndarray) -> tuple[float, float]:
    return float(np.mean(err ** 2)), float(np.mean(np.abs(err)))


def _plot(path, y: pd.DataFrame, f: pd.DataFrame, horizon: int, name: str) -> None:
    col = y.columns[0]
    last = f[(f["unique_id"] == col)]
    cutoffs = sorted(last["cutoff"].unique())
    shown = cutoffs[:: max(1, horizon)]
    title = f"{name}: {col}, {horizon}-step forecasts from non-overlapping origins in the backtest"
    with figure(path, title, size=(10, 3.8), dpi=120, legend="upper left") as (_, ax):
        tail = y[col].iloc[-(len(cutoffs) + horizon) * 2:]
        ax.plot(tail.index, tail.to_numpy(), color="0.35", lw=1.2, label="actual")
        for i, c in enumerate(shown):
            w = last[last["cutoff"] == c]
            ax.plot(w["ds"], w["forecast"], color="C3", lw=1.2, label="xLSTM forecast" if i == 0 else None)
        ax.axvline(cutoffs[0], color="0.7", ls="--", lw=1)
    print(f"  plot: {path}")


if __name__ == "__main__":
    main()
