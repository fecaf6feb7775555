#!/usr/bin/python3
"""Random forests side by side: media_reco vs scikit-learn vs ranger.

Run it through test/bench/forest.sh, which builds, installs and starts a
throw-away cluster.  In one run, on the same rows and with the same forest
size (n_trees, features tried per split, min_samples_leaf 1, bootstrap):

  * quality: test accuracy on UCI Adult (adult.data -> adult.test, from
    ../shared/data/uci-adult; skipped when absent) and on a generated
    200k x 50 classification set, R^2 on a generated regression set;
  * training time on 50k x 30, 2 threads each: media_reco.train_forest from
    a table (reading included), scikit-learn's RandomForestClassifier
    (n_jobs=2, arrays already in memory) and R's ranger (num.threads=2, data
    frame already in memory);
  * prediction over a 500k-row table on one core: SELECT
    media_reco.predict(name, features) vs scikit-learn's predict (n_jobs=1).

It prints ratios from this one run; the README quotes them.
"""
import argparse
import io
import os
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import psycopg2
import sklearn
from sklearn.datasets import make_classification, make_friedman1
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.metrics import accuracy_score, r2_score

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.environ.get("MEDIA_RECO_DATA",
                      os.path.join(HERE, "..", "..", "..", "shared", "data"))
N_TREES = 100
ADULT_COLS = ["age", "workclass", "fnlwgt", "education", "education_num", "marital_status",
              "occupation", "relationship", "race", "sex", "capital_gain", "capital_loss",
              "hours_per_week", "native_country"]
ADULT_NUMERIC = {"age", "fnlwgt", "education_num", "capital_gain", "capital_loss",
                 "hours_per_week"}


def connect():
    conn = psycopg2.connect("")
    conn.autocommit = True
    return conn


def q(cur, sql, args=None):
    cur.execute(sql, args)
    return cur.fetchall() if cur.description else None


def load_array_table(cur, table, X, y):
    """A table (id, features float8[], label float8) from numpy arrays."""
    q(cur, f"DROP TABLE IF EXISTS {table}")
    q(cur, f"CREATE TABLE {table} (id int, features float8[], label float8)")
    buf = io.StringIO()
    for i in range(X.shape[0]):
        buf.write(f"{i}\t{{{','.join(repr(float(v)) for v in X[i])}}}\t{float(y[i])!r}\n")
    buf.seek(0)
    cur.copy_expert(f"COPY {table} FROM STDIN", buf)
    q(cur, f"ANALYZE {table}")


def train_sql(cur, name, table, options, cols="'{features}'"):
    t0 = time.perf_counter()
    row = q(cur, f"SELECT rows, oob_score, seconds FROM media_reco.train_forest(%s, %s, 'label', "
                 f"{cols}, %s)", (name, table, options))[0]
    return time.perf_counter() - t0, row


def predict_sql(cur, name, table):
    rows = q(cur, f"SELECT label, media_reco.predict(%s, features) FROM {table} ORDER BY id",
             (name,))
    return np.array([r[0] for r in rows]), np.array([r[1] for r in rows])


def ranger_fit(X, y, Xt, classification, threads=2, mtry=None, seed=1):
    """Train R's ranger on the same arrays; returns (seconds for ranger(), test predictions)."""
    with tempfile.TemporaryDirectory() as d:
        np.savetxt(os.path.join(d, "train.csv"), np.column_stack([X, y]), delimiter=",", fmt="%.17g")
        np.savetxt(os.path.join(d, "test.csv"), Xt, delimiter=",", fmt="%.17g")
        script = f"""
suppressMessages(library(ranger))
d <- read.csv("{d}/train.csv", header=FALSE)
t <- read.csv("{d}/test.csv", header=FALSE)
p <- ncol(d) - 1
names(d) <- c(paste0("x", 1:p), "y")
names(t) <- paste0("x", 1:p)
if ({'TRUE' if classification else 'FALSE'}) d$y <- factor(d$y)
el <- system.time(m <- ranger(y ~ ., data=d, num.trees={N_TREES}, mtry={mtry or 'NULL'},
                              min.node.size=1, num.threads={threads}, seed={seed}))[["elapsed"]]
pr <- predict(m, t, num.threads={threads})$predictions
if (is.factor(pr)) pr <- as.numeric(as.character(pr))
cat(el, "\\n")
write.table(pr, "{d}/pred.txt", row.names=FALSE, col.names=FALSE)
"""
        out = subprocess.run(["Rscript", "-e", script], capture_output=True, text=True)
        if out.returncode != 0:
            print("ranger failed:", out.stderr[-500:], file=sys.stderr)
            return None, None
        secs = float(out.stdout.split()[0])
        pred = np.loadtxt(os.path.join(d, "pred.txt"))
        return secs, pred


def have_ranger():
    return subprocess.run(["Rscript", "-e", "library(ranger)"], capture_output=True).returncode == 0


# ---------------------------------------------------------------------------

def bench_adult(cur, report):
    path = os.path.join(DATA, "uci-adult")
    if not os.path.exists(os.path.join(path, "adult.data")):
        print(f"SKIP adult: {path}/adult.data not found (set MEDIA_RECO_DATA)")
        return

    def read(fname):
        rows = []
        with open(os.path.join(path, fname)) as f:
            for line in f:
                parts = [p.strip() for p in line.strip().split(",")]
                if len(parts) != 15:
                    continue
                rows.append(parts)
        return rows

    train, test = read("adult.data"), read("adult.test")
    for name, rows in (("adult_train", train), ("adult_test", test)):
        q(cur, f"DROP TABLE IF EXISTS {name}")
        coldefs = ", ".join(f"{c} {'float8' if c in ADULT_NUMERIC else 'text'}" for c in ADULT_COLS)
        q(cur, f"CREATE TABLE {name} (id int, {coldefs}, label float8)")
        buf = io.StringIO()
        for i, r in enumerate(rows):
            label = 1.0 if r[14].startswith(">50K") else 0.0
            buf.write("\t".join([str(i)] + r[:14] + [repr(label)]) + "\n")
        buf.seek(0)
        cur.copy_expert(f"COPY {name} FROM STDIN", buf)

    secs, (n, oob, inner) = train_sql(cur, "adult", "adult_train", '{"n_trees": %d, "seed": 1}' % N_TREES,
                                      cols="NULL")
    rows = q(cur, "SELECT label, media_reco.predict('adult', t) FROM adult_test t ORDER BY id")
    yt = np.array([r[0] for r in rows])
    acc_mr = accuracy_score(yt, np.array([r[1] for r in rows]))

    # scikit-learn on the same encoding: categories as ordinal codes in sorted order
    cats = {c: sorted({r[i] for r in train}) for i, c in enumerate(ADULT_COLS) if c not in ADULT_NUMERIC}

    def encode(rows):
        X = np.empty((len(rows), 14))
        for j, c in enumerate(ADULT_COLS):
            if c in ADULT_NUMERIC:
                X[:, j] = [float(r[j]) for r in rows]
            else:
                idx = {v: k for k, v in enumerate(cats[c])}
                X[:, j] = [idx.get(r[j], -1) for r in rows]
        return X

    X, Xt = encode(train), encode(test)
    y = np.array([1.0 if r[14].startswith(">50K") else 0.0 for r in train])
    t0 = time.perf_counter()
    sk = RandomForestClassifier(n_estimators=N_TREES, max_features="sqrt", n_jobs=2, random_state=0).fit(X, y)
    sk_secs = time.perf_counter() - t0
    acc_sk = accuracy_score(yt, sk.predict(Xt))
    line = (f"adult (32,561 -> 16,281 rows, 14 columns): accuracy media_reco {acc_mr:.4f} "
            f"(train {secs:.2f} s, oob {oob:.4f}), scikit-learn {acc_sk:.4f} ({sk_secs:.2f} s)")
    if have_ranger():
        r_secs, r_pred = ranger_fit(X, y, Xt, True, mtry=3)
        if r_secs is not None:
            line += f", ranger {accuracy_score(yt, r_pred):.4f} ({r_secs:.2f} s)"
    print(line)
    report.append(("adult accuracy", acc_mr, acc_sk))


def bench_generated_classification(cur, report, n_train):
    X, y = make_classification(n_samples=n_train + 50_000, n_features=50, n_informative=20,
                               n_redundant=10, n_classes=2, flip_y=0.02, random_state=0)
    Xtr, ytr, Xte, yte = X[:n_train], y[:n_train], X[n_train:], y[n_train:]
    load_array_table(cur, "gen_cls_train", Xtr, ytr)
    load_array_table(cur, "gen_cls_test", Xte, yte)
    secs, (n, oob, inner) = train_sql(cur, "gen_cls", "gen_cls_train",
                                      '{"n_trees": %d, "seed": 1}' % N_TREES)
    yt, pr = predict_sql(cur, "gen_cls", "gen_cls_test")
    acc_mr = accuracy_score(yt, pr)
    t0 = time.perf_counter()
    sk = RandomForestClassifier(n_estimators=N_TREES, max_features="sqrt", n_jobs=2,
                                random_state=0).fit(Xtr, ytr)
    sk_secs = time.perf_counter() - t0
    acc_sk = accuracy_score(yte, sk.predict(Xte))
    print(f"generated classification ({n_train:,} x 50 -> 50,000): accuracy media_reco {acc_mr:.4f} "
          f"({secs:.1f} s), scikit-learn {acc_sk:.4f} ({sk_secs:.1f} s)")
    report.append(("generated accuracy", acc_mr, acc_sk))


def bench_generated_regression(cur, report):
    X, y = make_friedman1(n_samples=60_000, n_features=20, noise=1.0, random_state=0)
    Xtr, ytr, Xte, yte = X[:50_000], y[:50_000], X[50_000:], y[50_000:]
    load_array_table(cur, "gen_reg_train", Xtr, ytr)
    load_array_table(cur, "gen_reg_test", Xte, yte)
    secs, _ = train_sql(cur, "gen_reg", "gen_reg_train",
                        '{"task": "regression", "n_trees": %d, "seed": 1}' % N_TREES)
    yt, pr = predict_sql(cur, "gen_reg", "gen_reg_test")
    r2_mr = r2_score(yt, pr)
    t0 = time.perf_counter()
    sk = RandomForestRegressor(n_estimators=N_TREES, max_features=1.0, n_jobs=2,
                               random_state=0).fit(Xtr, ytr)
    sk_secs = time.perf_counter() - t0
    r2_sk = r2_score(yte, sk.predict(Xte))
    print(f"generated regression (Friedman #1, 50,000 x 20 -> 10,000): R2 media_reco {r2_mr:.4f} "
          f"({secs:.1f} s), scikit-learn {r2_sk:.4f} ({sk_secs:.1f} s)")
    report.append(("regression R2", r2_mr, r2_sk))


def bench_speed(cur, report, pred_rows):
    X, y = make_classification(n_samples=50_000 + pred_rows, n_features=30, n_informative=15,
                               n_redundant=5, random_state=1)
    Xtr, ytr, Xp = X[:50_000], y[:50_000], X[50_000:]
    load_array_table(cur, "speed_train", Xtr, ytr)
    load_array_table(cur, "speed_pred", Xp, np.zeros(len(Xp)))

    q(cur, "SET media_reco.threads = 2")
    mr_secs, _ = train_sql(cur, "speed", "speed_train", '{"n_trees": %d, "seed": 1}' % N_TREES)
    t0 = time.perf_counter()
    sk = RandomForestClassifier(n_estimators=N_TREES, max_features="sqrt", n_jobs=2,
                                random_state=0).fit(Xtr, ytr)
    sk_secs = time.perf_counter() - t0
    line = (f"training 50,000 x 30, {N_TREES} trees, 2 threads: media_reco {mr_secs:.2f} s "
            f"(from the table), scikit-learn {sk_secs:.2f} s -> {sk_secs / mr_secs:.2f}x")
    r_secs = None
    if have_ranger():
        r_secs, _ = ranger_fit(Xtr, ytr, Xtr[:10], True, mtry=5)
        if r_secs:
            line += f"; ranger {r_secs:.2f} s -> media_reco/ranger {mr_secs / r_secs:.2f}"
    print(line)
    report.append(("train seconds", mr_secs, sk_secs, r_secs))

    # prediction, one core each, alternating, best of 3 (shared machines are noisy)
    q(cur, "SET max_parallel_workers_per_gather = 0")
    q(cur, "SELECT count(media_reco.predict('speed', features)) FROM speed_pred WHERE id < 10")
    sk.set_params(n_jobs=1)
    mr_runs, sk_runs = [], []
    for _ in range(3):
        t0 = time.perf_counter()
        q(cur, "SELECT sum(media_reco.predict('speed', features)) FROM speed_pred")
        mr_runs.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        sk.predict(Xp)
        sk_runs.append(time.perf_counter() - t0)
    mr_p, sk_p = min(mr_runs), min(sk_runs)
    t0 = time.perf_counter()
    q(cur, "SELECT sum(cardinality(features)) FROM speed_pred")
    scan = time.perf_counter() - t0
    print(f"prediction over {pred_rows:,} rows, one core, best of 3: media_reco {pred_rows / mr_p:,.0f} rows/s "
          f"({mr_p:.2f} s, of which {scan:.2f} s is the scan itself; runs "
          f"{', '.join(f'{r:.2f}' for r in mr_runs)}), scikit-learn predict {pred_rows / sk_p:,.0f} rows/s "
          f"({sk_p:.2f} s; runs {', '.join(f'{r:.2f}' for r in sk_runs)}) -> {sk_p / mr_p:.2f}x")
    report.append(("predict rows/s", pred_rows / mr_p, pred_rows / sk_p))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="smaller generated sets")
    ap.add_argument("--only", default="adult,classification,regression,speed")
    args = ap.parse_args()
    conn = connect()
    cur = conn.cursor()
    q(cur, "DROP EXTENSION IF EXISTS media_reco CASCADE")
    q(cur, "CREATE EXTENSION media_reco")
    q(cur, "SET maintenance_work_mem = '4GB'")
    print(f"scikit-learn {sklearn.__version__}, numpy {np.__version__}, "
          f"{os.cpu_count()} cores, {N_TREES} trees")
    report = []
    only = set(args.only.split(","))
    if "adult" in only:
        bench_adult(cur, report)
    if "classification" in only:
        bench_generated_classification(cur, report, 50_000 if args.quick else 200_000)
    if "regression" in only:
        bench_generated_regression(cur, report)
    if "speed" in only:
        bench_speed(cur, report, 100_000 if args.quick else 500_000)


if __name__ == "__main__":
    main()
