"""The MiniRocket baseline: aeon's MiniRocketClassifier on .ts data sets.

For each TRAIN/TEST pair of .ts files (sktime/aeon format), loads both with
aeon's loader, fits aeon's MiniRocketClassifier (MiniRocket transform with
its defaults, n_kernels=10,000 and max_dilations_per_kernel=32, then
StandardScaler(with_mean=False) and RidgeClassifierCV(alphas=logspace(-3, 3,
10))) with random_state=SEED and n_jobs=1 on the training split, and prints
one JSON line to stdout:

    {"set": name, "aeon": version, "accuracy": test accuracy,
     "train_cases": n, "test_cases": n,
     "transform_cases_per_second": test cases per second through the fitted
         MiniRocket transform alone (its transform() call, one thread,
         timed after a warm-up transform of the same cases so numba's JIT
         and cache loading are not counted; total cases / total seconds
         over repeats of at least --min-seconds),
     "features": transform output width,
     "unequal": null, or how unequal-length series were made equal,
     "channels", "length": of the series given to MiniRocket,
     "fit_seconds", "predict_seconds": the classifier's fit and predict}

aeon 1.6's MiniRocket does not take unequal-length series (no
capability:unequal_length tag; the classifier rejects them). As aeon's docs
recommend, such a set is padded with aeon's Padder (padded_length="max",
fill_value=0: zeros appended at the end) to the longest training series,
fitted on the training split and applied to both; if a test series is
longer than that, to the longest series of both splits instead. "unequal"
says which.

Several pairs may follow in one call; each set is independent (its own
fit with the same seed), so one pair per call gives the same results.

    python aeon_minirocket.py [--seed N] TRAIN.ts TEST.ts [TRAIN.ts TEST.ts ...]

Run it with the venv of `integration/python/venv.sh aeon`. Numba, OpenMP
and the BLAS are held to one thread (set before they are imported, unless
already set in the environment) so rates and results do not depend on
the core count.
"""

import os

for _var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import json
import sys
import time

import numpy as np
import aeon
import numba
from aeon.classification.convolution_based import MiniRocketClassifier
from aeon.datasets import load_from_ts_file
from aeon.transformations.collection.unequal_length import Padder


def set_name(path):
    base = os.path.basename(path)
    for suffix in ("_TRAIN.ts", "_TEST.ts", ".ts"):
        if base.endswith(suffix):
            return base[: -len(suffix)]
    return base


def lengths(X):
    return [x.shape[-1] for x in X]


def make_equal(X_train, X_test):
    """Returns 3D arrays and a note (None when both were equal length already)."""
    if isinstance(X_train, np.ndarray) and isinstance(X_test, np.ndarray):
        if X_train.shape[2] == X_test.shape[2]:
            return X_train, X_test, None
    train_max = max(lengths(X_train))
    test_max = max(lengths(X_test))
    span = "train %d..%d, test %d..%d" % (
        min(lengths(X_train)), train_max, min(lengths(X_test)), test_max)
    if test_max <= train_max:
        padder = Padder(padded_length="max", fill_value=0)
        X_train = padder.fit_transform(X_train)
        X_test = padder.transform(X_test)
        how = "padded with zeros at the end to the longest training series, %d (lengths %s) by aeon Padder(padded_length='max', fill_value=0) fitted on train" % (train_max, span)
    else:
        padder = Padder(padded_length=test_max, fill_value=0)
        X_train = padder.fit_transform(X_train)
        X_test = padder.transform(X_test)
        how = "padded with zeros at the end to the longest series of train and test, %d (lengths %s) by aeon Padder(padded_length=%d, fill_value=0)" % (test_max, span, test_max)
    return X_train, X_test, how + "; aeon %s MiniRocket does not take unequal length" % aeon.__version__


def rate(transformer, X, min_seconds):
    transformer.transform(X)  # warm-up: numba JIT/cache load
    cases = 0
    started = time.perf_counter()
    while True:
        transformer.transform(X)
        cases += len(X)
        elapsed = time.perf_counter() - started
        if elapsed >= min_seconds:
            return cases / elapsed


def run(train_path, test_path, seed, min_seconds):
    X_train, y_train = load_from_ts_file(train_path)
    X_test, y_test = load_from_ts_file(test_path)
    X_train, X_test, unequal = make_equal(X_train, X_test)

    clf = MiniRocketClassifier(random_state=seed, n_jobs=1)
    started = time.perf_counter()
    clf.fit(X_train, y_train)
    fit_seconds = time.perf_counter() - started
    started = time.perf_counter()
    predicted = clf.predict(X_test)
    predict_seconds = time.perf_counter() - started
    accuracy = float(np.mean(predicted == y_test))

    transformer = clf.pipeline_.steps[0][1]  # the fitted MiniRocket
    features = transformer.transform(X_test[:1]).shape[1]
    return {
        "set": set_name(train_path),
        "aeon": aeon.__version__,
        "accuracy": round(accuracy, 6),
        "train_cases": len(X_train),
        "test_cases": len(X_test),
        "transform_cases_per_second": round(rate(transformer, X_test, min_seconds), 1),
        "features": int(features),
        "unequal": unequal,
        "channels": int(X_train.shape[1]),
        "length": int(X_train.shape[2]),
        "fit_seconds": round(fit_seconds, 3),
        "predict_seconds": round(predict_seconds, 3),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=1, help="random_state of MiniRocket (default 1)")
    parser.add_argument("--min-seconds", type=float, default=2.0,
                        help="time the transform over repeats of at least this long (default 2)")
    parser.add_argument("files", nargs="+", metavar="TRAIN.ts TEST.ts")
    args = parser.parse_args()
    if len(args.files) % 2:
        parser.error("give TRAIN.ts TEST.ts pairs")
    numba.set_num_threads(1)
    for i in range(0, len(args.files), 2):
        result = run(args.files[i], args.files[i + 1], args.seed, args.min_seconds)
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    sys.exit(main())
