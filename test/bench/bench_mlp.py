#!/usr/bin/python3
"""The ad-targeting network side by side with scikit-learn's MLPClassifier.

Run through test/bench/mlp.sh (throw-away cluster).  Same hidden sizes,
activation (relu), solver (adam), batch size (256), epochs (fixed: no early
stopping, so epochs and time per epoch compare), l2 (1e-4), in one run:

  * a generated 100k-row, 40-feature, 20-ad set (80k train / 20k test);
  * ../shared/data/ad-click/advertising.csv (1,000 rows; a smoke test);
  * Fashion-MNIST (Debian's dataset-fashion-mnist; skipped when absent);
  * predict_proba over 1M rows with a [64] network on 40 features, one core.
"""
import argparse
import gzip
import io
import os
import struct
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import psycopg2
from sklearn.datasets import make_classification
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.environ.get("MEDIA_RECO_DATA", os.path.join(HERE, "..", "..", "..", "shared", "data"))


def q(cur, sql, args=None):
    cur.execute(sql, args)
    return cur.fetchall() if cur.description else None


def load(cur, table, X, y):
    q(cur, f"DROP TABLE IF EXISTS {table}")
    q(cur, f"CREATE TABLE {table} (id int, features float8[], label int)")
    buf = io.StringIO()
    for i in range(X.shape[0]):
        buf.write(f"{i}\t{{{','.join(repr(float(v)) for v in X[i])}}}\t{int(y[i])}\n")
    buf.seek(0)
    cur.copy_expert(f"COPY {table} FROM STDIN", buf)


def compare(cur, name, Xtr, ytr, Xte, yte, epochs, hidden=(64,)):
    load(cur, f"{name}_train", Xtr, ytr)
    load(cur, f"{name}_test", Xte, yte)
    opts = ('{"hidden": [%s], "epochs": %d, "batch_size": 256, "validation_fraction": 0, '
            '"patience": 10000, "tol": 0, "l2": 0.0001, "seed": 1}' % (",".join(map(str, hidden)), epochs))
    row = q(cur, "SELECT epochs, seconds FROM media_reco.train_mlp(%s, %s, 'label', '{features}', %s)",
            (name, f"{name}_train", opts))[0]
    rows = q(cur, f"SELECT label, media_reco.predict(%s, features) FROM {name}_test", (name,))
    acc_mr = np.mean([r[0] == r[1] for r in rows])
    sc = StandardScaler().fit(Xtr)
    t0 = time.perf_counter()
    sk = MLPClassifier(hidden_layer_sizes=hidden, activation="relu", solver="adam", batch_size=256,
                       max_iter=epochs, alpha=1e-4, early_stopping=False, n_iter_no_change=100000, tol=0,
                       random_state=1).fit(sc.transform(Xtr), ytr)
    sk_secs = time.perf_counter() - t0
    acc_sk = np.mean(sk.predict(sc.transform(Xte)) == yte)
    print(f"{name}: {len(ytr):,} train / {len(yte):,} test rows, {Xtr.shape[1]} features, {len(set(ytr))} classes, "
          f"{epochs} epochs: accuracy media_reco {acc_mr:.4f} vs scikit-learn {acc_sk:.4f} "
          f"({100 * (acc_mr - acc_sk):+.2f} points); seconds per epoch {row[1] / row[0]:.3f} "
          f"(from the table, reading included) vs {sk_secs / sk.n_iter_:.3f} -> {sk_secs / sk.n_iter_ / (row[1] / row[0]):.2f}x")
    return sk, sc


def read_idx(path):
    with gzip.open(path) as f:
        magic, = struct.unpack(">I", f.read(4))
        dims = [struct.unpack(">I", f.read(4))[0] for _ in range(magic & 0xFF)]
        return np.frombuffer(f.read(), dtype=np.uint8).reshape(dims)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", default="ads,advertising,fashion,predict")
    args = ap.parse_args()
    only = set(args.only.split(","))
    conn = psycopg2.connect("")
    conn.autocommit = True
    cur = conn.cursor()
    q(cur, "DROP EXTENSION IF EXISTS media_reco CASCADE")
    q(cur, "CREATE EXTENSION media_reco")
    q(cur, "SET maintenance_work_mem = '2GB'")
    q(cur, "SET client_min_messages = warning")

    sk = sc = None
    n = 20_000 if args.quick else 100_000
    X, y = make_classification(n_samples=n, n_features=40, n_informative=25, n_redundant=5, n_classes=20,
                               n_clusters_per_class=1, class_sep=1.5, random_state=0)
    cut = int(n * 0.8)
    if "ads" in only or "predict" in only:
        sk, sc = compare(cur, "ads", X[:cut], y[:cut], X[cut:], y[cut:], 10 if args.quick else 30)

    path = os.path.join(DATA, "ad-click", "advertising.csv")
    if "advertising" not in only:
        pass
    elif os.path.exists(path):
        import csv
        with open(path) as f:
            rows = list(csv.DictReader(f))
        cols = ["Daily Time Spent on Site", "Age", "Area Income", "Daily Internet Usage", "Male"]
        A = np.array([[float(r[c]) for c in cols] for r in rows])
        b = np.array([int(r["Clicked on Ad"]) for r in rows])
        compare(cur, "advertising", A[:800], b[:800], A[800:], b[800:], 100)
    else:
        print(f"SKIP advertising: {path} not found")

    fm = "/usr/share/datasets/fashion-mnist" if os.path.isdir("/usr/share/datasets/fashion-mnist") else None
    if "fashion" not in only:
        pass
    elif fm and not args.quick:
        def f(name):
            for root, _, files in os.walk(fm):
                if name in files:
                    return os.path.join(root, name)
        Xtr = read_idx(f("train-images-idx3-ubyte.gz")).reshape(60000, -1).astype(float) / 255
        ytr = read_idx(f("train-labels-idx1-ubyte.gz"))
        Xte = read_idx(f("t10k-images-idx3-ubyte.gz")).reshape(10000, -1).astype(float) / 255
        yte = read_idx(f("t10k-labels-idx1-ubyte.gz"))
        compare(cur, "fashion", Xtr, ytr, Xte, yte, 10)
    else:
        print("SKIP Fashion-MNIST: package dataset-fashion-mnist not installed" if not fm else "SKIP Fashion-MNIST (--quick)")

    # predict_proba over 1M rows, one core
    if "predict" not in only:
        return
    m = 200_000 if args.quick else 1_000_000
    Xp = np.random.RandomState(2).randn(m, 40)
    load(cur, "ads_pred", Xp, np.zeros(m))
    q(cur, "SET max_parallel_workers_per_gather = 0")
    q(cur, "SELECT count(media_reco.predict_proba('ads', features)) FROM ads_pred WHERE id < 10")
    runs = []
    for _ in range(3):
        t0 = time.perf_counter()
        q(cur, "SELECT count(media_reco.predict_proba('ads', features)) FROM ads_pred")
        runs.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    sk.predict_proba(sc.transform(Xp))
    sk_p = time.perf_counter() - t0
    print(f"predict_proba over {m:,} rows ([64] network, 40 features, 20 classes), one core, best of 3: "
          f"media_reco {m / min(runs):,.0f} rows/s, scikit-learn {m / sk_p:,.0f} rows/s (batch)")


if __name__ == "__main__":
    main()
