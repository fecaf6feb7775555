#!/usr/bin/python3
"""recommend_all vs one recommend() call per user, side by side.

Run it through test/bench/recommend_all.sh (throw-away cluster).  On a
seeded synthetic log (default 50,000 users, 20,000 items, 1,000,000 rows),
it times, in one run:

  * SELECT ... FROM users, LATERAL media_reco.recommend(name, user_id, 10)
  * SELECT ... FROM media_reco.recommend_all(name, 10)

each consumed by the same count(*), sum(score), alternating, best of 3;
checks that both give the same rows, and prints the ratio.
"""
import argparse
import os
import time

import psycopg2


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=50_000)
    ap.add_argument("--items", type=int, default=20_000)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--k", type=int, default=10)
    args = ap.parse_args()
    conn = psycopg2.connect("")
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute("DROP EXTENSION IF EXISTS media_reco CASCADE")
    cur.execute("CREATE EXTENSION media_reco")
    cur.execute("SET client_min_messages = warning")
    cur.execute("DROP TABLE IF EXISTS views")
    cur.execute("CREATE TABLE views AS SELECT user_id, item_id, plays FROM "
                "media_reco.synthetic_interactions(%s, %s, %s, 1)", (args.users, args.items, args.rows))
    cur.execute("CREATE INDEX ON views (user_id, item_id) INCLUDE (plays)")
    cur.execute("VACUUM ANALYZE views")
    cur.execute("SELECT media_reco.create_recommender('all', 'views', weight_col => 'plays', k => 50)")
    cur.execute("SELECT seconds FROM media_reco.refresh_neighbors('all')")
    refresh = cur.fetchone()[0]
    cur.execute("SELECT count(DISTINCT user_id) FROM views")
    n_users = cur.fetchone()[0]

    lateral_sql = ("SELECT u.user_id, r.item_id, r.score, r.rank FROM (SELECT DISTINCT user_id FROM views) u, "
                   "LATERAL media_reco.recommend('all', u.user_id, %d) r" % args.k)
    batch_sql = "SELECT user_id, item_id, score, rank FROM media_reco.recommend_all('all', %d)" % args.k
    # the same consumer for both (count and sum over every row), alternating, best of 3
    lat_runs, batch_runs = [], []
    for _ in range(3):
        for sql, runs in ((lateral_sql, lat_runs), (batch_sql, batch_runs)):
            t0 = time.perf_counter()
            cur.execute(f"SELECT count(*), sum(score) FROM ({sql}) s")
            runs.append(time.perf_counter() - t0)
    lateral, batch = min(lat_runs), min(batch_runs)
    cur.execute(f"CREATE TEMP TABLE per_user AS {lateral_sql}")
    cur.execute(f"CREATE TEMP TABLE batch AS {batch_sql}")
    cur.execute("SELECT (SELECT count(*) FROM per_user), (SELECT count(*) FROM batch), "
                "(SELECT count(*) FROM (SELECT * FROM per_user EXCEPT ALL SELECT * FROM batch) d)")
    n1, n2, differ = cur.fetchone()
    print(f"{n_users:,} users, {args.rows:,} rows, {args.items:,} items, k = {args.k} "
          f"(refresh {refresh:.2f} s, {os.cpu_count()} cores)")
    print(f"best of 3, alternating: LATERAL recommend(): {lateral:.2f} s ({n1:,} rows; runs "
          f"{', '.join(f'{r:.2f}' for r in lat_runs)}); recommend_all(): {batch:.2f} s ({n2:,} rows; runs "
          f"{', '.join(f'{r:.2f}' for r in batch_runs)}); rows that differ: {differ} -> {lateral / batch:.1f}x faster")


if __name__ == "__main__":
    main()
