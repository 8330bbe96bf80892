"""ROCKET (sktime's Rocket transform with 10,000 random kernels, then scikit-learn's StandardScaler(with_mean=False)
and RidgeClassifierCV(alphas=logspace(-3, 3, 10)): the pipeline of sktime's RocketClassifier, assembled here
because that class's pandas plumbing adds ~20 s per fit on 20,000 feature columns) on arrays that
benchmarks/classify_ucr.py hands over, run in an environment that has sktime (it pins pandas < 3.1, so it does
not live in xseq's own environment; see benchmarks/classify_ucr.py for how to build it).

Usage: python rocket_peer.py DATA.npz SEED [SEED ...]
DATA.npz holds X_train (n, C, T), y_train, X_test, y_test. Prints one JSON line per seed:
{"seed", "accuracy", "fit_s", "predict_s"}; fit_s covers the kernels, the transform of the training set and the
ridge fit.
A fit on a tiny slice runs first so that numba's compilation is not counted in any seed's time.
"""
import json
import os
import sys
import time

import numpy as np


class Rocket:
    def __init__(self, seed: int, n_jobs: int, num_kernels: int = 10_000):
        from sklearn.linear_model import RidgeClassifierCV
        from sklearn.preprocessing import StandardScaler
        from sktime.transformations.panel.rocket import Rocket as Transform

        self.transform = Transform(num_kernels=num_kernels, random_state=seed, n_jobs=n_jobs)
        self.scaler = StandardScaler(with_mean=False)
        self.ridge = RidgeClassifierCV(alphas=np.logspace(-3, 3, 10))

    def fit(self, X, y):
        features = np.asarray(self.transform.fit_transform(X))
        self.ridge.fit(self.scaler.fit_transform(features), y)
        return self

    def predict(self, X):
        return self.ridge.predict(self.scaler.transform(np.asarray(self.transform.transform(X))))


def main():
    n_jobs = int(os.environ.get("NUMBA_NUM_THREADS", "1"))
    data = np.load(sys.argv[1], allow_pickle=False)
    Xtr, ytr, Xte, yte = data["X_train"], data["y_train"], data["X_test"], data["y_test"]
    warm = np.concatenate([np.flatnonzero(ytr == c)[:2] for c in np.unique(ytr)])
    Rocket(0, n_jobs, num_kernels=100).fit(Xtr[warm], ytr[warm]).predict(Xte[:2])
    for seed in map(int, sys.argv[2:]):
        clf = Rocket(seed, n_jobs)
        t0 = time.perf_counter()
        clf.fit(Xtr, ytr)
        fit_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        acc = float((clf.predict(Xte) == yte).mean())
        print(json.dumps({"seed": seed, "accuracy": acc, "fit_s": fit_s, "predict_s": time.perf_counter() - t0}),
              flush=True)


if __name__ == "__main__":
    main()
