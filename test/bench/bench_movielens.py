#!/usr/bin/python3
"""Recommendation quality on MovieLens 100K (ua.base -> ua.test), every metric.

Run through test/bench/movielens.sh.  Item-based recommenders are scored
with media_reco.evaluate (k = 10, 50 neighbours per item; EASE and RP3beta
also with 200, binary, at their default options); user-based CF with
the same metric functions over recommend_user_based (50 neighbour users).
Skips, saying so, when ../shared/data/ml-100k is absent.  Prints a markdown
table (the README quotes it).
"""
import os
import sys
import time

import psycopg2

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.environ.get("MEDIA_RECO_DATA", os.path.join(HERE, "..", "..", "..", "shared", "data"))
METRICS = ["precision@10", "recall@10", "ndcg@10", "map@10", "hit_rate@10", "mrr", "coverage"]


def main():
    path = os.path.join(DATA, "ml-100k")
    if not os.path.exists(os.path.join(path, "ua.base")):
        print(f"SKIP: {path}/ua.base not found (set MEDIA_RECO_DATA)")
        return
    conn = psycopg2.connect("")
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute("DROP EXTENSION IF EXISTS media_reco CASCADE")
    cur.execute("CREATE EXTENSION media_reco")
    cur.execute("SET client_min_messages = warning")
    for t in ("ua_base", "ua_test"):
        cur.execute(f"DROP TABLE IF EXISTS {t}")
        cur.execute(f"CREATE TABLE {t} (user_id int, item_id int, rating int, ts bigint)")
        with open(os.path.join(path, "ua.base" if t == "ua_base" else "ua.test")) as f:
            cur.copy_expert(f"COPY {t} FROM STDIN", f)
    cur.execute("CREATE INDEX ON ua_base (user_id, item_id) INCLUDE (rating)")
    cur.execute("CREATE INDEX ON ua_base (item_id)")
    cur.execute("ANALYZE ua_base, ua_test")

    rows = []
    popular = None
    for weight in (None, "rating"):
        for metric in ("cosine", "jaccard", "adjusted_cosine", "pearson", "conditional", "bm25"):
            if weight is None and metric in ("adjusted_cosine", "pearson"):
                continue  # centring 0/1 data leaves nothing
            name = f"{metric}_{weight or 'binary'}"
            cur.execute("SELECT media_reco.create_recommender(%s, 'ua_base', weight_col => %s, metric => %s, k => 50)",
                        (name, weight, metric))
            cur.execute("SELECT 1 FROM media_reco.refresh_neighbors(%s)", (name,))
            t0 = time.perf_counter()
            cur.execute("SELECT metric, value FROM media_reco.evaluate(%s, 'ua_test', 10)", (name,))
            secs = time.perf_counter() - t0
            got = dict(cur.fetchall())
            rows.append((f"item-based {metric}, {weight or 'binary'}", [got[m] for m in METRICS], secs))
            if popular is None:
                popular = [got["popular_" + m] for m in METRICS]
    # the learned item-item models, binary, at their defaults (read back from the refresh history)
    for metric in ("ease", "rp3beta"):
        for k in (50, 200):
            name = f"{metric}_k{k}"
            cur.execute("SELECT media_reco.create_recommender(%s, 'ua_base', metric => %s, k => %s)", (name, metric, k))
            cur.execute("SELECT 1 FROM media_reco.refresh_neighbors(%s)", (name,))
            cur.execute("SELECT parameters FROM media_reco.refresh_history WHERE recommender = %s ORDER BY id DESC LIMIT 1",
                        (name,))
            params = {o: v for o, v in cur.fetchone()[0].items() if v is not None}
            t0 = time.perf_counter()
            cur.execute("SELECT metric, value FROM media_reco.evaluate(%s, 'ua_test', 10)", (name,))
            got = dict(cur.fetchall())
            secs = time.perf_counter() - t0
            if metric == "ease":
                label = f"item-based EASE λ = {params.get('ease_lambda', 'default')}, binary, k = {k}"
            else:
                label = (f"item-based RP3beta α = {params.get('rp3_alpha', 'default')}, "
                         f"β = {params.get('rp3_beta', 'default')}, binary, k = {k}")
            rows.append((label, [got[m] for m in METRICS], secs))
    # user-based CF: the same metrics over recommend_user_based, same users and relevant sets
    for weight, metric in ((None, "cosine"), ("rating", "cosine"), ("rating", "pearson"), (None, "jaccard")):
        name = f"{metric}_{weight or 'binary'}"
        t0 = time.perf_counter()
        cur.execute(f"""
          WITH seen AS (SELECT DISTINCT user_id::int8 AS u, item_id::int8 AS i FROM ua_base),
          rel AS (SELECT t.user_id::int8 AS u, array_agg(DISTINCT t.item_id::int8) AS items FROM ua_test t
                  WHERE NOT EXISTS (SELECT 1 FROM seen s WHERE s.u = t.user_id AND s.i = t.item_id) GROUP BY 1),
          lists AS (SELECT r.items AS rel, coalesce((SELECT array_agg(x.item_id ORDER BY x.rank)
                      FROM media_reco.recommend_user_based(%s, r.u, 10, 50) x), '{{}}') AS items FROM rel r)
          SELECT avg(media_reco.precision_at_k(items, rel, 10)), avg(media_reco.recall_at_k(items, rel, 10)),
                 avg(media_reco.ndcg_at_k(items, rel, 10)), avg(media_reco.average_precision_at_k(items, rel, 10)),
                 avg(media_reco.hit_at_k(items, rel, 10)), avg(media_reco.reciprocal_rank(items, rel)),
                 (SELECT count(DISTINCT e) FROM lists, unnest(items) e)::float8
                   / (SELECT count(DISTINCT item_id) FROM ua_base)
          FROM lists""", (name,))
        vals = list(cur.fetchone())
        rows.append((f"user-based {metric}, {weight or 'binary'} (50 users)", vals, time.perf_counter() - t0))
    rows.append(("most popular unseen items", popular, None))

    print("| MovieLens 100K ua.base → ua.test, k = 10 | " + " | ".join(METRICS) + " | seconds |")
    print("|---|" + "---|" * (len(METRICS) + 1))
    for label, vals, secs in rows:
        print(f"| {label} | " + " | ".join(f"{v:.4f}" for v in vals) + f" | {'' if secs is None else f'{secs:.1f}'} |")


if __name__ == "__main__":
    main()
