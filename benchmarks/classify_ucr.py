"""UCR/UEA classification: XLSTMClassifier (recipes/classify/ucr.yaml, mean ± std over seeds) beside 1-NN DTW
and a ridge classifier on the raw values computed in the same run, and published 1-NN DTW and ROCKET
accuracies on the same train/test splits.

Published figures (test accuracy on the archive's default split):
  1-NN DTW, full window: Dau et al., "The UCR Time Series Archive" (2019), for GunPoint and
  ItalyPowerDemand; dependent DTW (DTW_D): Bagnall et al., "The UEA multivariate time series
  classification archive, 2018", for BasicMotions and JapaneseVowels.
  ROCKET: Dempster et al. (2020), results_ucr.csv of the authors' repository (mean of 10 runs), for the
  univariate sets; Ruiz et al., "The great multivariate time series classification bake off" (2021), for
  the multivariate sets.
Usage: python benchmarks/classify_ucr.py [--data-dir DIR] [--datasets ...] [--seeds 0 1 2]
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch
import yaml

from xseq import XLSTMClassifier
from xseq.classify.baselines import nn_dtw_predict, ridge_on_raw
from xseq.datasets import load_ts

PUBLISHED = {  # name: (1-NN DTW, ROCKET)
    "GunPoint": (0.907, 1.000),
    "ItalyPowerDemand": (0.950, 0.970),
    "BasicMotions": (0.975, 1.000),
    "JapaneseVowels": (0.949, 0.962),
}


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--recipe", default=os.path.join(here, "..", "recipes", "classify", "ucr.yaml"))
    p.add_argument("--data-dir",
                   default=os.environ.get("XSEQ_DATA_DIR", os.path.join(here, "..", "..", "shared", "data")))
    p.add_argument("--datasets", nargs="+", default=None)
    p.add_argument("--seeds", type=int, nargs="+", default=None)
    p.add_argument("--max-epochs", type=int, default=None, help="override the recipe (for a quick look)")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    args = p.parse_args()
    recipe = yaml.safe_load(open(args.recipe))
    params = dict(recipe["classifier"])
    if args.max_epochs:
        params["max_epochs"] = args.max_epochs
    torch.set_num_threads(args.threads)
    seeds = args.seeds or recipe["seeds"]
    names = args.datasets or recipe["datasets"]
    print(f"XLSTMClassifier {params}\nseeds {seeds}; torch {torch.__version__}, threads={torch.get_num_threads()}")
    rows = []
    for name in names:
        train = load_ts(f"ucr/{name}/{name}_TRAIN.ts", data_dir=args.data_dir)
        test = load_ts(f"ucr/{name}/{name}_TEST.ts", data_dir=args.data_dir)
        accs, secs = [], []
        for seed in seeds:
            t0 = time.perf_counter()
            clf = XLSTMClassifier(**params, seed=seed, progress_bar=False).fit(train.X, train.y)
            secs.append(time.perf_counter() - t0)
            accs.append(clf.score(test.X, test.y))
            print(f"  {name} seed {seed}: accuracy {accs[-1]:.4f}, trained in {secs[-1]:.0f} s", flush=True)
        dtw = float((nn_dtw_predict(list(train.X), train.y, list(test.X)) == test.y).mean())
        ridge = float((ridge_on_raw(list(train.X), train.y, list(test.X)) == test.y).mean())
        rows.append((name, np.mean(accs), np.std(accs), dtw, ridge, *PUBLISHED[name], np.mean(secs)))

    print(f"\n{'data set':<18}{'xLSTM (ours)':>16}{'1-NN DTW':>10}{'ridge':>8}{'1-NN DTW':>10}{'ROCKET':>8}"
          f"{'train s':>9}")
    print(f"{'':<18}{'mean ± std':>16}{'this run':>10}{'raw':>8}{'quoted':>10}{'quoted':>8}{'per seed':>9}")
    for name, m, s, dtw, ridge, pdtw, procket, sec in rows:
        print(f"{name:<18}{m:>9.4f} ± {s:.3f}{dtw:>10.4f}{ridge:>8.4f}{pdtw:>10.3f}{procket:>8.3f}{sec:>9.0f}")
    ge_dtw = [m >= pdtw for _, m, _, _, _, pdtw, _, _ in rows]
    near_rocket = [m >= procket - 0.03 for _, m, _, _, _, _, procket, _ in rows]
    print(f"ours >= quoted 1-NN DTW on {sum(ge_dtw)}/{len(rows)}; within 3 points of ROCKET on "
          f"{sum(near_rocket)}/{len(rows)}")


if __name__ == "__main__":
    main()
