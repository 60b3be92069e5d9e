"""Trains scikit-learn's references for the `train` figures of
integration/bench (train.go) and prints one JSON object on stdout:

    train_sklearn.py [--epochs 20] [--batch 32] [--seed 1] [--repeats 3]
                     [--threads 1] [--models softmax,mlp] TRAIN_CSV TEST_CSV

    {"sklearn": "1.9.1", "numpy": "2.4.6", "threads": 1, "blas": [...],
     "rows": 3823, "epochs": 20, "batch": 32,
     "softmax": {"sps": ..., "seconds": ..., "accuracy": ...},
     "mlp": {"sps": ..., "seconds": ..., "accuracy": ..., "epochs_run": 20}}

The data and its treatment are muon's side's: the optdigits CSV files (64
pixel counts 0-16 and the digit; an optional header line is skipped), the
features standardized with the training set's mean and population standard
deviation (a feature whose deviation is 0 becomes 0, in the test set too),
as float64, which is also what muon trains in.

sps is training samples per second, epochs * rows / the wall time of the
training loop alone (time.perf_counter around it: no loading, no scaling,
no scoring), the best of --repeats runs, each from the same seed; accuracy
is on the test file, from the last run.

--threads caps the BLAS and OpenMP thread pools with threadpoolctl (the
same pools OMP_NUM_THREADS and OPENBLAS_NUM_THREADS size); 0 leaves the
libraries' defaults. See train.go for which figure uses which.
"""

import argparse
import json
import sys
import time
import warnings

import numpy as np
import sklearn
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import SGDClassifier
from sklearn.neural_network import MLPClassifier
from threadpoolctl import threadpool_info, threadpool_limits

CLASSES = np.arange(10)


def load(path):
    with open(path) as f:
        lines = [l.strip() for l in f if l.strip()]
    if not lines[0].split(",")[0].isdigit():
        lines = lines[1:]  # this copy of optdigits has a header line
    data = np.array([[int(v) for v in l.split(",")] for l in lines], dtype=np.float64)
    if data.shape[1] != 65:
        sys.exit(f"train_sklearn: {path}: {data.shape[1]} fields per row, want 65")
    return data[:, :64], data[:, 64].astype(np.int64)


def standardize(x, mean, std):
    z = np.zeros_like(x)
    ok = std > 0
    z[:, ok] = (x[:, ok] - mean[ok]) / std[ok]
    return z


def softmax(x, y, xt, yt, a):
    """SGDClassifier with log loss, trained with partial_fit on shuffled
    minibatches of a.batch rows, a.epochs times over the data.

    Two differences from muon's softmax regression to keep in mind when
    reading the figure: partial_fit updates the weights once per sample
    inside each minibatch (the minibatch only decides when Python hands
    rows to the Cython loop), where muon takes one step per minibatch on
    its mean gradient; and for ten classes SGDClassifier trains ten binary
    one-vs-rest logistic regressions, one after the other (n_jobs=None),
    not one multinomial model. Both sides still see every row once per
    epoch, so samples/s compare the same amount of data.
    """
    rng = np.random.RandomState(a.seed)
    clf = SGDClassifier(loss="log_loss", learning_rate="constant", eta0=0.01, alpha=0.0,
                        random_state=a.seed)
    n = len(y)
    start = time.perf_counter()
    for _ in range(a.epochs):
        order = rng.permutation(n)
        for i in range(0, n, a.batch):
            idx = order[i:i + a.batch]
            clf.partial_fit(x[idx], y[idx], classes=CLASSES)
    seconds = time.perf_counter() - start
    return seconds, {"accuracy": float(clf.score(xt, yt))}


def softmax_fit(x, y, xt, yt, a):
    """SGDClassifier.fit: the same per-sample SGD for a.epochs epochs in
    one call, with no Python between minibatches: scikit-learn's fastest
    path, and no batch size at all. The harder baseline."""
    clf = SGDClassifier(loss="log_loss", learning_rate="constant", eta0=0.01, alpha=0.0,
                        max_iter=a.epochs, tol=None, shuffle=True, random_state=a.seed)
    start = time.perf_counter()
    clf.fit(x, y)
    seconds = time.perf_counter() - start
    return seconds, {"accuracy": float(clf.score(xt, yt))}


def mlp(x, y, xt, yt, a):
    """MLPClassifier with muon's MLP settings: one hidden layer of 100 ReLU
    units, Adam at 0.001, minibatches of a.batch shuffled rows, a.epochs
    epochs exactly (tol=0 and n_iter_no_change above max_iter, so it never
    stops early), L2 alpha at its default 0.0001."""
    clf = MLPClassifier(hidden_layer_sizes=(100,), activation="relu", solver="adam",
                        learning_rate_init=0.001, batch_size=a.batch, max_iter=a.epochs,
                        tol=0.0, n_iter_no_change=a.epochs + 1, shuffle=True,
                        random_state=a.seed, alpha=0.0001)
    with warnings.catch_warnings():
        # It always reaches max_iter, which is the point.
        warnings.simplefilter("ignore", ConvergenceWarning)
        start = time.perf_counter()
        clf.fit(x, y)
        seconds = time.perf_counter() - start
    if clf.n_iter_ != a.epochs:
        sys.exit(f"train_sklearn: MLPClassifier ran {clf.n_iter_} epochs, want {a.epochs}")
    return seconds, {"accuracy": float(clf.score(xt, yt)), "epochs_run": int(clf.n_iter_)}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("train")
    p.add_argument("test")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--models", default="softmax,softmax_fit,mlp")
    a = p.parse_args()

    x, y = load(a.train)
    xt, yt = load(a.test)
    mean, std = x.mean(axis=0), x.std(axis=0)
    x, xt = standardize(x, mean, std), standardize(xt, mean, std)

    out = {"sklearn": sklearn.__version__, "numpy": np.__version__, "threads": a.threads,
           "rows": len(y), "epochs": a.epochs, "batch": a.batch}
    limits = a.threads if a.threads > 0 else None
    with threadpool_limits(limits=limits):
        out["blas"] = [{k: i.get(k) for k in ("internal_api", "num_threads")} for i in threadpool_info()]
        for name in a.models.split(","):
            train = {"softmax": softmax, "softmax_fit": softmax_fit, "mlp": mlp}[name]
            best = None
            for _ in range(a.repeats):
                seconds, res = train(x, y, xt, yt, a)
                if best is None or seconds < best:
                    best = seconds
            res.update(sps=a.epochs * len(y) / best, seconds=best)
            out[name] = res
    json.dump(out, sys.stdout)
    print()


if __name__ == "__main__":
    main()
