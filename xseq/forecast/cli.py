"""`xseq forecast`: train on a CSV, backtest on its last part beside two baselines, and write the forecast
past the end of the data (forecast.csv), the backtest's forecasts (backtest.csv) and a plot (forecast.png)
into the --out folder. Without --data it runs the quickstart on the monthly Mauna Loa CO2 series that ships
with statsmodels (offline)."""
from __future__ import annotations

import argparse
import re
import sys
import textwrap
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ..common.cli import (
    CLIError,
    OneLineParser,
    add_common_flags,
    data_file,
    dispatch,
    fail,
    fraction,
    nonneg_int,
    positive_int,
)

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

DEFAULT_OUT = "outputs/forecast"
QUICKSTART = {"horizon": 12, "season": 12, "test": 96}  # monthly CO2: a year ahead, the last 8 years tested
VAL_SIZE = 0.2  # XLSTMForecaster's default: the last 20% of the training part selects the epoch


def co2_monthly() -> pd.DataFrame:
    import pandas as pd
    import statsmodels.api as sm

    weekly = sm.datasets.co2.load_pandas().data["co2"]
    monthly = weekly.resample("MS").mean()
    missing = int(monthly.isna().sum())
    if missing:
        print(f"co2: {missing} month(s) without any weekly reading, filled by linear interpolation")
        monthly = monthly.interpolate()
    monthly.index.freq = "MS"
    return pd.DataFrame({"co2": monthly}).rename_axis("date")


def build_parser(prog: str = "xseq forecast") -> argparse.ArgumentParser:
    p = OneLineParser(prog=prog, description=__doc__)
    d = p.add_argument_group("data")
    d.add_argument("--data", type=data_file, metavar="CSV",
                   help="CSV file with one time column and one column per series (default: the CO2 quickstart)")
    d.add_argument("--time-col", metavar="NAME",
                   help="the time column of --data, read as dates (default: date)")
    d.add_argument("--target", nargs="+", metavar="COL",
                   help="columns of --data to forecast (default: every column but the time column)")
    d.add_argument("--fill", choices=["ffill", "interpolate", "zero"],
                   help="fill missing values: ffill (the last value before), interpolate (linear) or zero "
                        "(default: a missing value is an error)")
    m = p.add_argument_group("forecast")
    m.add_argument("--horizon", type=positive_int, metavar="N",
                   help="steps to forecast (default: 24; quickstart: 12)")
    m.add_argument("--lookback", type=positive_int, metavar="N",
                   help="past steps the model reads (default: 4 x horizon)")
    m.add_argument("--season", type=positive_int, metavar="N",
                   help="season length of the seasonal-naive baseline (default: 24; quickstart: 12)")
    m.add_argument("--test", type=positive_int, metavar="N",
                   help="steps at the end held out for the backtest, >= horizon "
                        "(default: the larger of horizon and 10%% of the data; quickstart: 96)")
    m.add_argument("--quantiles", type=fraction, nargs="+", metavar="Q",
                   help="quantile levels in (0, 1) to forecast besides the point forecast, e.g. 0.1 0.9: "
                        "columns in the CSVs and a band in the plot (default: none; with --pretrained: 0.1 0.9)")
    t = p.add_argument_group("training")
    t.add_argument("--epochs", type=positive_int, default=20, metavar="N",
                   help="most training epochs; the best epoch on validation is kept (default: 20)")
    t.add_argument("--threads", type=positive_int, default=1, metavar="N", help="CPU threads for torch (default: 1)")
    t.add_argument("--seed", type=nonneg_int, default=0, help="random seed (default: 0)")
    t.add_argument("--pretrained", type=data_file, metavar="CKPT",
                   help="a TiRex checkpoint (model.ckpt, from NX-AI or fine-tuned; its licence applies): forecast "
                        "with it zero-shot instead of training an xLSTM (needs --data)")
    t.add_argument("--finetune", type=nonneg_int, default=0, metavar="EPOCHS",
                   help="with --pretrained: fine-tune the checkpoint on the data for this many epochs (0: zero-shot)")
    o = p.add_argument_group("results")
    o.add_argument("--out", default=DEFAULT_OUT, metavar="DIR",
                   help=f"folder for forecast.csv, backtest.csv and forecast.png (default: {DEFAULT_OUT})")
    o.add_argument("--no-plot", action="store_true", help="do not draw forecast.png")
    add_common_flags(p)
    p.set_defaults(prog=prog)
    return p


def main(argv=None, prog: str = "xseq forecast") -> dict:
    """Run the command; returns the backtest scores {model: (MSE, MAE)}. A problem with the input prints one
    line `xseq forecast: error: ...` and exits with status 2 (see xseq.common.cli.dispatch)."""
    return dispatch(build_parser(prog), argv, run)


def run(args) -> dict:
    if args.pretrained and args.data is None:
        _exit_early(args, "--pretrained needs --data (a CSV of your series)")
    if args.finetune and not args.pretrained:
        fail("--finetune", "needs --pretrained (it fine-tunes a TiRex checkpoint)")
    if args.data is None:
        for flag, value in (("--target", args.target), ("--time-col", args.time_col)):
            if value is not None:
                fail(flag, "needs --data (the quickstart forecasts its own CO2 series)")
    verbose = 0 if args.quiet else 2 if args.verbose else 1
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        fail("--out", f"must be a folder (it holds forecast.csv, backtest.csv and forecast.png); {out} is a file")

    if args.data is None:
        y, name, ylabels = co2_monthly(), "Mauna Loa CO2, monthly (statsmodels)", {"co2": "CO2 (ppm)"}
    else:
        y, name, ylabels = read_data(args), args.data.name, {}
    panel = _validated(y, args)
    check_sizes(args, len(y), pretrained=bool(args.pretrained))
    p = plan(args, len(y))
    horizon, lookback, season, test = p["horizon"], p["lookback"], p["season"], p["test"]
    if args.pretrained:
        result, f, future, model_name = _run_pretrained(args, y, name, horizon, season, test, verbose)
    else:
        result, f, future, model_name = _run_xlstm(args, y, panel, name, horizon, lookback, season, test, verbose)

    out.mkdir(parents=True, exist_ok=True)
    future = future.rename_axis(y.index.name or "date")
    future.to_csv(out / "forecast.csv")
    f.to_csv(out / "backtest.csv", index=False)
    what = "" if len(future.columns) == len(y.columns) else " and its quantiles"
    print(f"  the forecast of the {horizon} steps after the data{what}: {out / 'forecast.csv'}; "
          f"the backtest's forecasts: {out / 'backtest.csv'}")
    if not args.no_plot:
        plot_forecast(out / "forecast.png", y, f, future, horizon=horizon, season=season, name=name,
                      model=model_name, ylabels=ylabels)
        print(f"  plot: {out / 'forecast.png'}")
    return result


def read_data(args) -> pd.DataFrame:
    """--data read like xseq.datasets.load_csv (time column parsed and made the index, --target selected),
    with every problem named by its flag."""
    import pandas as pd

    path, time_col = args.data, args.time_col or "date"
    try:
        frame = pd.read_csv(path)
    except (ValueError, UnicodeDecodeError) as err:  # pandas' EmptyDataError and ParserError are ValueErrors
        fail("--data", f"{path.name}: cannot read it as CSV ({_first_line(err)})")
    if time_col not in frame.columns:
        hint = "" if args.time_col else " (pass --time-col NAME)"
        fail("--time-col", f"{time_col!r} is not a column of {path.name}{hint}; its columns: {list(frame.columns)}")
    try:
        frame[time_col] = pd.to_datetime(frame[time_col])
    except (ValueError, TypeError) as err:
        raw = frame[time_col]
        bad = raw[raw.notna() & pd.to_datetime(raw, errors="coerce", format="mixed").isna()]
        what = f"{bad.iloc[0]!r} (line {bad.index[0] + 2} of the file)" if len(bad) else f"({_first_line(err)})"
        fail("--time-col", f"{time_col!r} of {path.name} has a value that is not a date: {what}")
    frame = frame.set_index(time_col)
    if args.target is not None:
        missing = [c for c in args.target if c not in frame.columns]
        if missing:
            fail("--target", f"{', '.join(map(repr, missing))} not in {path.name}; its series: {list(frame.columns)}")
        frame = frame[args.target]
    if frame.shape[1] == 0:
        fail("--data", f"{path.name} has no column besides the time column {time_col!r}")
    for col in frame.columns:
        values = frame[col]
        if not pd.api.types.is_numeric_dtype(values):
            bad = values[values.notna() & pd.to_numeric(values, errors="coerce").isna()]
            if len(bad):
                fail("--data", f"{path.name}: column {col!r} has a value that is not a number: {bad.iloc[0]!r} "
                               f"(at {bad.index[0]})" + ("" if args.target else "; choose the series with --target"))
    return frame


def _validated(y: pd.DataFrame, args):
    """xseq.forecast's own checks of the frame (timestamps, missing and infinite values), in flag spelling."""
    from .frames import read_panel

    try:
        return read_panel(y, fill=args.fill)
    except ValueError as err:
        raise CLIError(api_message(str(err), args.data.name if args.data else "the CO2 series")) from err


def api_message(msg: str, source: str) -> str:
    """The Python API's message about `y` and its parameters, in the command line's words."""
    msg = re.sub(r"pass fill='ffill', 'interpolate' or 'zero'", "pass --fill ffill, interpolate or zero", msg)
    msg = re.sub(r"^y\[('(?:[^']|\\')*'|\"[^\"]*\")\]", rf"--data {source}: column \1", msg)
    msg = re.sub(r"^y has non-numeric", f"--data {source} has non-numeric", msg)
    msg = re.sub(r"^y ", f"--data {source} ", msg)
    msg = re.sub(r"^quantiles ", "--quantiles ", msg)
    if source != "the CO2 series":  # a CSV read in file order: positions (from 0) -> lines of the file
        msg = msg.replace(" in its index", " in its time column")
        line = lambda m: str(int(m.group(0)) + 2)  # noqa: E731 (header line, then position 0 on line 2)
        msg = re.sub(r"\(at positions ([\d, ]+)", lambda m: "(on lines " + re.sub(r"\d+", line, m.group(1)), msg)
        msg = re.sub(r"\(position (\d+)\)", lambda m: f"(line {int(m.group(1)) + 2})", msg)
    return msg


def plan(args, T: int, **given) -> dict:
    """horizon, lookback, season and test: as given on the command line (or in `given`), else the defaults."""
    quick = args.data is None
    v = {k: given.get(k, getattr(args, k)) for k in ("horizon", "lookback", "season", "test")}
    h = v["horizon"] or (QUICKSTART["horizon"] if quick else 24)
    return {"horizon": h, "lookback": v["lookback"] or 4 * h,
            "season": v["season"] or (QUICKSTART["season"] if quick else 24),
            "test": v["test"] or (QUICKSTART["test"] if quick else max(h, T // 10))}


def check_sizes(args, T: int, *, pretrained: bool) -> None:
    """Enough data for the backtest, the training and the baseline, or a message naming the flag to change
    with the numbers (and the largest value of that flag that fits)."""
    p = plan(args, T)
    horizon, lookback, season, test = p["horizon"], p["lookback"], p["season"], p["test"]
    if test < horizon:  # only where --test is given: its default is at least the horizon
        fail("--test", f"must be >= --horizon ({horizon}) so that the backtest holds one whole forecast, got {test}")
    train = T - test
    n_val = max(round(VAL_SIZE * max(train, 0)), horizon)
    if pretrained:
        short_training, short_season = False, train < season
    else:
        short_training, short_season = train < lookback + horizon + n_val, train < season
    if not (short_training or short_season):
        return
    if short_training:
        why = (f"a backtest on the last {test:,} steps plus training (lookback {lookback:,} + horizon {horizon:,} + "
               f"validation {n_val:,}) need {test + lookback + horizon + n_val:,}")
        suspects = ("horizon", "lookback", "test")
    else:
        why = (f"a backtest on the last {test:,} steps and the seasonal-naive baseline before it (season {season}) "
               f"need {test + season:,}")
        suspects = ("season", "test", "horizon")
    given = [k for k in suspects if getattr(args, k) is not None]
    flag = given[0] if given else None
    if flag is None:
        fits = _largest(args, T, "horizon", pretrained)
        hint = f"; --horizon {fits} would fit" if fits else ""
        fail("--data", f"{_source(args)} is too short for the defaults: it has {T:,} steps, and {why}{hint}")
    fits = _largest(args, T, flag, pretrained)
    hint = f"; --{flag} {fits} would fit" if fits else ""
    fail(f"--{flag}", f"{p[flag]} is too large for {_source(args)}: it has {T:,} steps, and {why}{hint}")


def _largest(args, T: int, key: str, pretrained: bool) -> int | None:
    """The largest value of --key below the current one with which the data suffice (others as given)."""
    for value in range(min(plan(args, T)[key], T) - 1, 0, -1):
        p = plan(args, T, **{key: value})
        train = T - p["test"]
        n_val = max(round(VAL_SIZE * max(train, 0)), p["horizon"])
        enough = train >= p["season"] and (pretrained or train >= p["lookback"] + p["horizon"] + n_val)
        if p["test"] >= p["horizon"] and enough:
            return value
    return None


def _source(args) -> str:
    return args.data.name if args.data is not None else "the CO2 series"


def _run_xlstm(args, y, panel, name, horizon, lookback, season, test, verbose):
    import numpy as np

    from .baselines import NormalEquations, predict_centred_linear
    from .estimator import XLSTMForecaster

    train = y.iloc[:-test]
    model = XLSTMForecaster(horizon, lookback, patch_len=max(1, min(16, lookback // 8)), max_epochs=args.epochs,
                            fill=args.fill, threads=args.threads, seed=args.seed, batch_size=64,
                            quantiles=args.quantiles, verbose=verbose, val_size=VAL_SIZE)
    t0 = time.perf_counter()
    try:
        model.fit(train)
    except ValueError as err:
        raise CLIError(api_message(str(err), _source(args))) from err
    fit_s = time.perf_counter() - t0

    n_windows = test - horizon + 1
    f = model.cross_validate(y, n_windows=n_windows, step=1).forecasts
    values = [s.values for s in panel.series]
    # baselines on the same windows: seasonal naive, and the closed-form centred linear map fitted on the
    # training part (ridge 1e-3 per window), each series scaled as the forecaster scales it
    eq = NormalEquations(lookback, horizon)
    for i, s in enumerate(values):
        z = (s[:-test] - model.shift_[i]) / model.scale_[i]
        origins = np.arange(lookback, len(z) - horizon + 1)
        eq.add(z[origins[:, None] + np.arange(-lookback, 0)], z[origins[:, None] + np.arange(horizon)])
    W = eq.solve(1e-3)
    naive_err, lin_err = [], []
    for i, s in enumerate(values):
        origins = len(s) - horizon - np.arange(n_windows - 1, -1, -1)
        past = s[origins[:, None] + np.arange(-lookback, 0)]
        future = s[origins[:, None] + np.arange(horizon)]
        naive_err.append((naive_windows(s, origins, horizon, season) - future).ravel())
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
    return result, f, future, "xLSTM"


def _run_pretrained(args, y, name, horizon, season, test, verbose):
    """TiRex zero-shot (or fine-tuned): backtest on the last `test` steps from origins `horizon` apart beside
    the seasonal naive, the future forecast with the quantile band."""
    import numpy as np

    from .pretrained import TiRexForecaster

    try:
        model = TiRexForecaster(args.pretrained, horizon, quantiles=args.quantiles or [0.1, 0.9], fill=args.fill,
                                threads=args.threads, max_epochs=args.finetune, seed=args.seed,
                                progress_bar=args.finetune > 0, verbose=verbose)
        t0 = time.perf_counter()
        model.fit(y.iloc[:-test] if args.finetune else y)
    except ValueError as err:
        raise CLIError(api_message(str(err), _source(args))) from err
    fit_s = time.perf_counter() - t0
    n_windows = max(1, (test - horizon) // horizon + 1)
    f = model.cross_validate(y, n_windows=n_windows, step=horizon).forecasts
    naive_err = []
    for c in y.columns:
        values = y[c].to_numpy(dtype=float)
        origins = len(values) - horizon - horizon * np.arange(n_windows - 1, -1, -1)
        future = values[origins[:, None] + np.arange(horizon)]
        naive_err.append((naive_windows(values, origins, horizon, season) - future).ravel())
    result = {"TiRex": _scores((f["forecast"] - f["y"]).to_numpy()),
              "seasonal naive": _scores(np.concatenate(naive_err))}
    how = f"fine-tuned {model.n_epochs_} epochs" if args.finetune else "zero-shot"
    print(f"\n{name}: {len(y)} steps, horizon {horizon}; TiRex {how} ({fit_s:.1f} s), backtest on the last {test} "
          f"steps ({n_windows} windows, {horizon} apart)")
    for k, (mse, mae) in result.items():
        print(f"  {k:<22s} MSE {mse:10.4f}   MAE {mae:8.4f}")
    return result, f, model.predict(y=y), "TiRex"


def naive_windows(values: np.ndarray, origins: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """The seasonal naive forecast from each origin: the last `season` values before it, repeated."""
    import numpy as np

    from .baselines import seasonal_naive

    return seasonal_naive(values[np.asarray(origins)[:, None] + np.arange(-season, 0)], horizon, season)


def _scores(err: np.ndarray) -> tuple[float, float]:
    import numpy as np

    return float(np.mean(err ** 2)), float(np.mean(np.abs(err)))


def plot_forecast(path, y: pd.DataFrame, backtest: pd.DataFrame, future: pd.DataFrame, *, horizon: int,
                  season: int, name: str, model: str, ylabels: dict, max_series: int = 4) -> None:
    """One panel per series (the first `max_series`): the recent history, the backtest's forecasts from
    non-overlapping origins (the last 8 horizons), the forecast past the end of the data with its quantile band
    when there is one, and the seasonal naive forecast from the same origins."""
    from ..common.plots import figure

    cols = list(y.columns[:max_series])
    H = horizon
    index = y.index
    T = len(index)
    positions = index.get_indexer(sorted(backtest["cutoff"].unique()))
    shown = min(T - (positions.min() + 1), 8 * H)  # steps of the backtest drawn
    start = max(0, T - shown - max(2 * H, season, shown // 2))
    origins, last = [], T
    for p in positions[::-1]:  # non-overlapping forecasts, the last one ending at the end of the data
        o = p + 1
        if o + H <= last and o >= T - shown:
            origins.append(o)
            last = o
    origins = origins[::-1]
    levels = sorted(float(c.rsplit("_q", 1)[1]) for c in future.columns if c.startswith(f"{cols[0]}_q"))
    lo, hi = (levels[0], levels[-1]) if len(levels) >= 2 else (None, None)
    n_more = len(y.columns) - len(cols)
    title = (f"{name}: {model} forecast of the next {H} steps, and its backtest from {len(origins)} "
             f"origin{'s' if len(origins) != 1 else ''} "
             f"beside the seasonal naive (season {season})" + (f"; {n_more} more series in the CSV" if n_more else ""))
    title = "\n".join(textwrap.wrap(title, 95))
    size = (11, 1.2 + 2.8 * len(cols))
    xlabel = index.name or "time"
    with figure(path, size=(size[0], size[1] + 0.25 * title.count("\n")), dpi=120, nrows=len(cols), sharex=True,
                squeeze=False) as (_, axes):
        for k, col in enumerate(cols):
            ax = axes[k, 0]
            values = y[col].to_numpy(dtype=float)
            ax.plot(index[start:], values[start:], color="0.25", lw=1.1, label="actual")
            bt = backtest[backtest["unique_id"] == col]
            for j, o in enumerate(origins):
                w = bt[bt["cutoff"] == index[o - 1]]
                ax.plot(w["ds"], w["forecast"], color="C0", lw=1.4,
                        label=f"{model} backtest ({H} steps from each origin)" if j == 0 else None)
                if lo is not None and f"forecast_q{lo:g}" in w:
                    ax.fill_between(w["ds"], w[f"forecast_q{lo:g}"], w[f"forecast_q{hi:g}"], color="C0", alpha=0.12,
                                    lw=0, label=f"backtest {lo:g}-{hi:g} quantiles" if j == 0 else None)
                naive = naive_windows(values, [o], H, season)[0]
                ax.plot(index[o:o + H], naive, color="C2", lw=1, ls=":",
                        label=f"seasonal naive (season {season})" if j == 0 else None)
            if origins:
                ax.axvline(index[origins[0]], color="0.6", ls="--", lw=0.8)
            ax.axvline(index[-1], color="0.6", ls="-", lw=0.8)
            fidx = future.index
            if lo is not None:
                ax.fill_between(fidx, future[f"{col}_q{lo:g}"], future[f"{col}_q{hi:g}"], color="C3", alpha=0.25,
                                lw=0, label=f"forecast {lo:g}-{hi:g} quantiles")
            ax.plot(fidx, future[col], color="C3", lw=1.6, label=f"{model} forecast")
            naive_future = naive_windows(values, [T], H, season)[0] if T >= season else None
            if naive_future is not None:
                ax.plot(fidx, naive_future, color="C2", lw=1, ls=":")
            ax.set_ylabel(ylabels.get(col, col))
            ax.grid(alpha=0.25)
            ymin, ymax = ax.get_ylim()
            ax.set_ylim(ymin, ymax + 0.1 * (ymax - ymin))  # headroom for the two labels below
            marks = [(index[origins[0]], " backtest")] if origins else []
            for x, text in marks + [(index[-1], " forecast")]:
                ax.text(x, 0.98, text, transform=ax.get_xaxis_transform(), va="top", ha="left", fontsize=8,
                        color="0.4")
        if hasattr(index, "tz"):  # dates: short labels that do not run into each other
            import matplotlib.dates as mdates

            locator = mdates.AutoDateLocator()
            axes[-1, 0].xaxis.set_major_locator(locator)
            axes[-1, 0].xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
        axes[0, 0].set_title(title, fontsize=10, loc="left")
        axes[-1, 0].set_xlabel(xlabel)
        axes[0, 0].legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)


def _first_line(err) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def _exit_early(args, message: str):
    """A usage problem found before anything is read: the one line and exit status 2 as dispatch gives them,
    with the message as the exception's text for callers of main() from Python (--debug: a traceback)."""
    if args.debug:
        raise CLIError(message)
    print(f"{args.prog}: error: {message}", file=sys.stderr)
    exit_ = SystemExit(f"{args.prog}: error: {message}")
    exit_.code = 2
    raise exit_


if __name__ == "__main__":
    main()
