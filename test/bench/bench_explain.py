#!/usr/bin/python3
"""explain_prediction speed on UCI Adult (run through test/bench/explain.sh).

Trains on adult.data (32,561 rows, 14 columns, 8 of them text) and explains
the rows of adult.test (16,281) with SELECT ... LATERAL explain_prediction over
the table, one backend (no parallel workers), timed in the server
(EXPLAIN ANALYZE is not used: the clock runs around the whole statement):
  * forest, 100 trees, max_depth 5 (the seed's configuration);
  * forest, 100 trees fully grown (min_samples_leaf 1), on the first
    --full-rows rows (300: TreeSHAP is O(T*L*D^2), thousands of leaves);
  * network, hidden [64], relu, at media_reco.explain_steps 64 (the default);
and prints rows/s, with predict's rows/s on the same rows for scale, and the
worst additivity / completeness error seen.
"""
import argparse
import io
import os
import time

import psycopg2

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.environ.get("MEDIA_RECO_DATA", os.path.join(HERE, "..", "..", "..", "shared", "data"))
COLS = ["age", "workclass", "fnlwgt", "education", "education_num", "marital_status",
        "occupation", "relationship", "race", "sex", "capital_gain", "capital_loss",
        "hours_per_week", "native_country"]
NUMERIC = {"age", "fnlwgt", "education_num", "capital_gain", "capital_loss", "hours_per_week"}


def q(cur, sql, args=None):
    cur.execute(sql, args)
    return cur.fetchall() if cur.description else None


def load(cur, name, fname):
    rows = []
    with open(os.path.join(DATA, "uci-adult", fname)) as f:
        for line in f:
            parts = [p.strip() for p in line.strip().split(",")]
            if len(parts) == 15:
                rows.append(parts)
    q(cur, f"DROP TABLE IF EXISTS {name}")
    coldefs = ", ".join(f"{c} {'float8' if c in NUMERIC else 'text'}" for c in COLS)
    q(cur, f"CREATE TABLE {name} (id int, {coldefs}, label float8)")
    buf = io.StringIO()
    for i, r in enumerate(rows):
        buf.write("\t".join([str(i)] + r[:14] + ["1" if r[14].startswith(">50K") else "0"]) + "\n")
    buf.seek(0)
    cur.copy_expert(f"COPY {name} FROM STDIN", buf)
    q(cur, f"ANALYZE {name}")
    return len(rows)


def timed(cur, sql):
    t0 = time.perf_counter()
    r = q(cur, sql)
    return time.perf_counter() - t0, r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=16281, help="test rows explained (at most 16281)")
    ap.add_argument("--full-rows", type=int, default=300,
                    help="test rows explained by the fully grown forest (O(T*L*D^2): thousands of leaves)")
    args = ap.parse_args()
    conn = psycopg2.connect("")
    conn.autocommit = True
    cur = conn.cursor()
    q(cur, "SET client_min_messages = warning")
    q(cur, "CREATE EXTENSION IF NOT EXISTS media_reco")
    q(cur, "SET max_parallel_workers_per_gather = 0")
    n_train = load(cur, "adult_train", "adult.data")
    n_test = load(cur, "adult_test", "adult.test")
    q(cur, f"CREATE TABLE sample AS SELECT * FROM adult_test ORDER BY id LIMIT {args.rows}")
    q(cur, f"CREATE TABLE sample_full AS SELECT * FROM adult_test ORDER BY id LIMIT {args.full_rows}")
    print(f"UCI Adult: {n_train} training rows, {n_test} test rows, one backend")
    cols = "'{" + ",".join(COLS) + "}'"
    configs = [("forest, 100 trees, max_depth 5", "f5", "train_forest",
                '{"n_trees": 100, "max_depth": 5, "seed": 1}', "sample"),
               ("forest, 100 trees, fully grown", "ffull", "train_forest", '{"n_trees": 100, "seed": 1}',
                "sample_full"),
               ("network [64] relu, 64 steps", "net", "train_mlp",
                '{"hidden": [64], "epochs": 10, "seed": 1}', "sample")]
    for title, name, fn, opts, table in configs:
        n = q(cur, f"SELECT count(*) FROM {table}")[0][0]
        q(cur, f"SELECT 1 FROM media_reco.{fn}(%s, 'adult_train', 'label', {cols}, %s)", (name, opts))
        depth = ""
        if fn == "train_forest":
            nodes = q(cur, "SELECT metrics->>'nodes' FROM media_reco.models WHERE name = %s", (name,))[0][0]
            depth = f", {int(nodes):,} nodes"
        # warm the cache (model load, TreeSHAP layout) on one row
        q(cur, f"SELECT count(*) FROM (SELECT * FROM {table} LIMIT 1) t, LATERAL media_reco.explain_prediction('{name}', t)")
        ps, _ = timed(cur, f"SELECT sum(media_reco.predict('{name}', t)) FROM {table} t")
        es, _ = timed(cur, f"SELECT count(*) FROM {table} t, LATERAL media_reco.explain_prediction('{name}', t)")
        err = q(cur, f"SELECT max(abs(c.completeness_error)), avg(c.pieces) FROM "
                     f"(SELECT * FROM {table} ORDER BY id LIMIT 2000) t, LATERAL media_reco.explain_completeness('{name}', t) c")[0]
        extra = f", {float(err[1]):.1f} path pieces on average" if err[1] is not None else ""
        print(f"{title}{depth}: explain_prediction {n / es:,.1f} rows/s ({n} rows, {es:.2f} s); "
              f"predict {n / ps:,.0f} rows/s; worst |completeness error| {float(err[0]):.1e} "
              f"(first {min(n, 2000)} rows){extra}")


if __name__ == "__main__":
    main()
