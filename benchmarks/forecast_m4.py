"""M4 competition benchmark for one frequency: the recipe (rules in the frequency's horizon H and season m)
trained as one global model on every series, scored on the official test set with the competition's sMAPE,
MASE and OWA, beside Naive2, seasonal naive and naive computed here (Naive2 must reproduce the quoted figure:
it validates the metric code), the ablation (the same recipe with the xLSTM path removed: the linear path
alone, trained the same way) and the published figures where we quote them.

Usage: python benchmarks/forecast_m4.py Weekly [--data-dir DIR | --train F --test F] [--recipe YAML]
       [--no-ablation] [--members N] [--threads N] [--out runs/m4]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from xseq.datasets.m4 import frequency_info, load_m4
from xseq.forecast.ensemble import ForecastEnsemble
from xseq.forecast.metrics import m4_scores, naive2, seasonal_naive
from xseq.forecast.recipes import model_from_recipe

# quoted from the M4 competition's results (sMAPE, MASE, OWA); None where we quote no figure
QUOTED = {
    "Weekly": {"Naive2": (9.161, 2.777, 1.000), "Smyl (ES-RNN, winner overall)": (7.817, 2.356, 0.851),
               "Darin & Stellwagen (best Weekly entry)": (6.582, 2.107, 0.739)},
    "Hourly": {"Naive2": (18.383, 2.395, 1.000), "Seasonal naive": (13.912, 1.193, 0.628),
               "Smyl (ES-RNN, winner overall)": (9.328, 0.893, 0.440), "best Hourly entry": (None, None, 0.410)},
}
ROOT = Path(__file__).resolve().parents[1]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("frequency", help="Yearly, Quarterly, Monthly, Weekly, Daily or Hourly")
    p.add_argument("--data-dir", default=os.environ.get("XSEQ_DATA_DIR", str(ROOT.parent / "shared" / "data")),
                   help="folder holding m4/<Freq>-train.csv and m4/<Freq>-test.csv")
    p.add_argument("--train", help="path of <Freq>-train.csv (overrides --data-dir)")
    p.add_argument("--test", help="path of <Freq>-test.csv (overrides --data-dir)")
    p.add_argument("--recipe", help="recipe YAML (default: recipes/forecast/m4_<freq>.yaml, else m4_weekly.yaml: "
                                    "the rules are the same for every frequency)")
    p.add_argument("--no-ablation", action="store_true", help="skip the linear-only ablation")
    p.add_argument("--members", type=int, help="a quick look: only the first N lookbacks, one seed each")
    p.add_argument("--max-epochs", type=int, help="override the recipe (a quick look)")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--out", default="runs/m4", help="folder for the forecasts CSV and the plot")
    args = p.parse_args()
    name, H, m = frequency_info(args.frequency)
    recipe = Path(args.recipe) if args.recipe else ROOT / "recipes" / "forecast" / f"m4_{name.lower()}.yaml"
    if not recipe.exists() and not args.recipe:
        recipe = ROOT / "recipes" / "forecast" / "m4_weekly.yaml"
    torch.set_num_threads(args.threads)
    data = load_m4(name, args.data_dir, train_path=args.train, test_path=args.test)
    histories = data.histories()
    lengths = np.array([len(h) for h in histories])
    print(f"M4 {name}: {len(histories)} series, lengths {lengths.min()}-{lengths.max()} (median "
          f"{int(np.median(lengths))}), horizon H={H}, season m={m}; "
          f"recipe {recipe.relative_to(ROOT) if recipe.is_relative_to(ROOT) else recipe}; "
          f"torch {torch.__version__}, threads={torch.get_num_threads()}", flush=True)

    rows = {}
    n2 = np.stack([naive2(h, H, m) for h in histories])
    naive2_scores = m4_scores(histories, data.test, n2, m, naive2_scores=(1.0, 1.0))
    ref = (naive2_scores["smape"], naive2_scores["mase"])
    rows["Naive2"] = m4_scores(histories, data.test, n2, m, ref)
    rows["Seasonal naive"] = m4_scores(histories, data.test, np.stack([seasonal_naive(h, H, m) for h in histories]),
                                       m, ref)
    rows["Naive"] = m4_scores(histories, data.test, np.stack([np.repeat(h[-1], H) for h in histories]), m, ref)

    overrides = {"progress_bar": sys.stderr.isatty(), "threads": args.threads}
    if args.max_epochs:
        overrides["max_epochs"] = args.max_epochs
    rules = {"H": H, "m": m}
    variants = [("xLSTM recipe", {})] + ([] if args.no_ablation else [("linear only (ablation)", {"deep": False})])
    forecasts, times = {}, {}
    for label, extra in variants:
        model = model_from_recipe(recipe, rules=rules, **overrides, **extra)
        if isinstance(model, ForecastEnsemble) and args.members:
            model.lookbacks = (model.lookbacks or [model.base.lookback])[:args.members]
            model.n_seeds = 1
        t0 = time.perf_counter()
        model.fit(data.train)
        times[label] = time.perf_counter() - t0
        f = model.predict()["y"].to_numpy().reshape(len(histories), H)
        forecasts[label] = f
        rows[label] = m4_scores(histories, data.test, f, m, ref)
        members = getattr(model, "member_times_", None)
        detail = ((f" ({len(members)} members: " + ", ".join(f"{t / 60:.1f}" for t in members) + " min)")
                  if members else "")
        print(f"{label}: trained in {times[label] / 60:.1f} min{detail}; sMAPE {rows[label]['smape']:.3f} "
              f"MASE {rows[label]['mase']:.3f} OWA {rows[label]['owa']:.3f}", flush=True)

    print(f"\nM4 {name}, official test set, every series ({len(histories)}); OWA against Naive2 computed here")
    print(f"  {'':40s} {'sMAPE':>7s} {'MASE':>7s} {'OWA':>7s}   train time")
    for label, r in rows.items():
        t = f"   {times[label] / 60:5.1f} min" if label in times else ""
        print(f"  {label:40s} {r['smape']:7.3f} {r['mase']:7.3f} {r['owa']:7.3f}{t}")
    quoted = QUOTED.get(name)
    if quoted:
        print("  quoted (M4 competition results):")
        for label, (s, ms, o) in quoted.items():
            f = lambda v: f"{v:7.3f}" if v is not None else f"{'-':>7s}"
            print(f"  {label:40s} {f(s)} {f(ms)} {f(o)}")
    else:
        print(f"  (no published figures quoted for {name})")
    if "linear only (ablation)" in rows:
        d = rows["linear only (ablation)"]["owa"] - rows["xLSTM recipe"]["owa"]
        print(f"  the xLSTM path changes OWA by {-d:+.3f} against the linear path alone (negative = better)")

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    import pandas as pd
    frame = pd.DataFrame({"unique_id": np.repeat(data.ids, H), "h": np.tile(np.arange(1, H + 1), len(histories)),
                          "y": data.test.ravel(), **{k: v.ravel() for k, v in forecasts.items()},
                          "naive2": n2.ravel()})
    frame.to_csv(out / f"m4_{name.lower()}_forecasts.csv", index=False)
    plot(histories, data, forecasts, n2, out / f"m4_{name.lower()}.png", name, H)
    print(f"  forecasts: {out / f'm4_{name.lower()}_forecasts.csv'}; plot: {out / f'm4_{name.lower()}.png'}")


def plot(histories, data, forecasts, n2, path, name, H, n=6):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pick = np.linspace(0, len(histories) - 1, n).astype(int)
    fig, axes = plt.subplots(2, 3, figsize=(13, 6.5))
    for ax, i in zip(axes.ravel(), pick):
        h = histories[i][-6 * H:]
        t = np.arange(len(histories[i]))[-6 * H:]
        fut = np.arange(len(histories[i]), len(histories[i]) + H)
        ax.plot(t, h, color="0.35", lw=1, label="history")
        ax.plot(fut, data.test[i], color="k", lw=1.4, label="actual (test)")
        ax.plot(fut, n2[i], color="0.6", lw=1, ls="--", label="Naive2")
        for j, (label, f) in enumerate(forecasts.items()):
            ax.plot(fut, f[i], color=f"C{3 + j}", lw=1.3, label=label)
        ax.set_title(data.ids[i], fontsize=9)
        ax.set_xlabel("step")
        ax.set_ylabel("value")
    axes[0, 0].legend(fontsize=7, loc="best")
    fig.suptitle(f"M4 {name}: forecasts of {H} steps on the official test set (six series)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
