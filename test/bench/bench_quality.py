#!/usr/bin/python3
"""EASE and RP3beta beside the neighbourhood models on three public data sets.

Run it through test/bench/quality.sh (a throw-away cluster).  Every list is
the top 10, seen items excluded, scored by media_reco.evaluate (item models)
or by the same metric functions over recommend_user_based (50 neighbour
users); popularity is evaluate's popular_* baseline.  Interactions are
binary (no weight column) unless a row says otherwise.

  ua       MovieLens 100K ua.base -> ua.test (10 held-out ratings per user)
  mls      MovieLens ml-latest-small, split_interactions 'temporal', 20 % of
           each user's latest ratings held out
  lastfm   Last.fm hetrec-2011 user_artists, split_interactions 'random',
           20 %, seed 42; binary, and weighted by log(1 + plays) and by the
           raw play count, EASE's lambda scaled by the mean squared weight
           of the training rows (so lambda means the same as with binary
           weights, where that mean is 1)

Per data set: cosine, BM25 (k = 50), user-based cosine, popularity; an EASE
lambda sweep and an RP3beta alpha x beta grid at neighbour k = 50, then the
best (by ndcg@10 on the test split itself: this is a sweep, not a tuned
model) and the default setting at k = 200; RP3beta's default alpha and beta
also with min_support 2 and 3 and with shrinkage 10.  EASE runs on the whole
catalogue (Last.fm: 15,346 artists in training, a 1.9 GB matrix), plus one run on
Last.fm restricted to the 5,000 most popular artists (ease_max_items;
--lastfm-max-items) for the time and quality it trades.  Skips a data set,
saying so, when its files are absent.  Prints markdown tables (the README
quotes them).
"""
import argparse
import os
import sys
import time

import psycopg2

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.environ.get("MEDIA_RECO_DATA", os.path.join(HERE, "..", "..", "..", "shared", "data"))
METRICS = ["precision@10", "recall@10", "ndcg@10", "map@10", "hit_rate@10", "mrr", "coverage"]
LAMBDAS = [50, 100, 250, 500, 1000, 2000]
ALPHAS = [0.5, 0.75, 1.0, 1.25]
BETAS = [0.0, 0.25, 0.4, 0.5, 0.6, 0.75]


def q(cur, sql, args=None):
    cur.execute(sql, args)
    return cur.fetchall() if cur.description else None


# ---------------------------------------------------------------- loading


def load_ua(cur):
    path = os.path.join(DATA, "ml-100k")
    if not os.path.exists(os.path.join(path, "ua.base")):
        return None
    for t, f in (("ua_train", "ua.base"), ("ua_test", "ua.test")):
        q(cur, f"DROP TABLE IF EXISTS {t}")
        q(cur, f"CREATE TABLE {t} (user_id int, item_id int, rating int, ts bigint)")
        with open(os.path.join(path, f)) as fh:
            cur.copy_expert(f"COPY {t} FROM STDIN", fh)
    return "ua_train", "ua_test", []


def load_mls(cur):
    path = os.path.join(DATA, "ml-latest-small", "ratings.csv")
    if not os.path.exists(path):
        return None
    q(cur, "DROP TABLE IF EXISTS mls_ratings, mls_train, mls_test")
    q(cur, "CREATE TABLE mls_ratings (user_id int, item_id int, rating real, ts bigint)")
    with open(path) as fh:
        cur.copy_expert("COPY mls_ratings FROM STDIN (FORMAT csv, HEADER)", fh)
    q(cur, """SELECT * FROM media_reco.split_interactions('mls_ratings', 'mls_train', 'mls_test',
                                                          'temporal', 0.2, time_col => 'ts')""")
    return "mls_train", "mls_test", []


def load_lastfm(cur):
    path = os.path.join(DATA, "lastfm-hetrec2011", "user_artists.dat")
    if not os.path.exists(path):
        return None
    q(cur, "DROP TABLE IF EXISTS lastfm_plays, lastfm_raw, lastfm_train, lastfm_test")
    q(cur, "CREATE TABLE lastfm_raw (user_id int, item_id int, plays bigint)")
    with open(path) as fh:
        cur.copy_expert("COPY lastfm_raw FROM STDIN (FORMAT csv, DELIMITER E'\\t', HEADER)", fh)
    q(cur, """CREATE TABLE lastfm_plays AS
              SELECT user_id, item_id, plays::float8 AS plays, ln(1 + plays) AS logplays FROM lastfm_raw""")
    q(cur, """SELECT * FROM media_reco.split_interactions('lastfm_plays', 'lastfm_train', 'lastfm_test',
                                                          'random', 0.2, seed => 42)""")
    return "lastfm_train", "lastfm_test", ["plays", "logplays"]


LOADERS = {"ua": load_ua, "mls": load_mls, "lastfm": load_lastfm}
TITLES = {
    "ua": "MovieLens 100K ua.base → ua.test",
    "mls": "ml-latest-small, temporal 20 % split",
    "lastfm": "Last.fm user_artists, random 20 % split (seed 42)",
}


# ---------------------------------------------------------------- running


class Runner:
    def __init__(self, cur, train, test):
        self.cur, self.train, self.test, self.n = cur, train, test, 0
        self.popular = None

    def item(self, metric, k=50, weight=None, **opts):
        """create + refresh + evaluate one item-based recommender: (metrics, refresh s, phases)."""
        cur = self.cur
        self.n += 1
        name = f"q{self.n}"
        extra = "".join(f", {o} => %s" for o in opts)
        q(cur, f"""SELECT media_reco.create_recommender(%s, %s, weight_col => %s, metric => %s, k => %s{extra})""",
          (name, self.train, weight, metric, k, *opts.values()))
        t0 = time.perf_counter()
        q(cur, "SELECT 1 FROM media_reco.refresh_neighbors(%s)", (name,))
        secs = time.perf_counter() - t0
        phases = q(cur, """SELECT parameters->'phases' FROM media_reco.refresh_history WHERE recommender = %s
                            ORDER BY id DESC LIMIT 1""", (name,))[0][0]
        got = dict(q(cur, "SELECT metric, value FROM media_reco.evaluate(%s, %s, 10)", (name, self.test)))
        if self.popular is None:
            self.popular = [got["popular_" + m] for m in METRICS]
        q(cur, "SELECT media_reco.drop_recommender(%s)", (name,))
        return [got[m] for m in METRICS], secs, phases

    def user_based(self, metric="cosine", weight=None, neighbors=50):
        cur = self.cur
        self.n += 1
        name = f"q{self.n}"
        q(cur, "SELECT media_reco.create_recommender(%s, %s, weight_col => %s, metric => %s)",
          (name, self.train, weight, metric))
        t0 = time.perf_counter()
        vals = list(q(cur, f"""
          WITH seen AS (SELECT DISTINCT user_id::int8 AS u, item_id::int8 AS i FROM {self.train}),
          rel AS (SELECT t.user_id::int8 AS u, array_agg(DISTINCT t.item_id::int8) AS items FROM {self.test} t
                  WHERE NOT EXISTS (SELECT 1 FROM seen s WHERE s.u = t.user_id AND s.i = t.item_id)
                    AND EXISTS (SELECT 1 FROM seen s WHERE s.u = t.user_id) GROUP BY 1),
          lists AS (SELECT r.items AS rel, coalesce((SELECT array_agg(x.item_id ORDER BY x.rank)
                      FROM media_reco.recommend_user_based(%s, r.u, 10, %s) x), '{{}}') AS items FROM rel r)
          SELECT avg(media_reco.precision_at_k(items, rel, 10)), avg(media_reco.recall_at_k(items, rel, 10)),
                 avg(media_reco.ndcg_at_k(items, rel, 10)), avg(media_reco.average_precision_at_k(items, rel, 10)),
                 avg(media_reco.hit_at_k(items, rel, 10)), avg(media_reco.reciprocal_rank(items, rel)),
                 (SELECT count(DISTINCT e) FROM lists, unnest(items) e)::float8
                   / (SELECT count(DISTINCT item_id) FROM {self.train})
          FROM lists""", (name, neighbors))[0])
        secs = time.perf_counter() - t0
        q(cur, "SELECT media_reco.drop_recommender(%s)", (name,))
        return vals, secs


def phases_text(ph):
    if not ph:
        return ""
    if isinstance(ph, dict):
        return ", ".join(f"{k} {v:.1f}" if isinstance(v, (int, float)) else f"{k} {v}" for k, v in ph.items())
    return str(ph)


def table(title, rows, note="seconds"):
    print(f"\n| {title} | " + " | ".join(METRICS) + f" | {note} |")
    print("|---|" + "---|" * (len(METRICS) + 1))
    for label, vals, secs in rows:
        print(f"| {label} | " + " | ".join(f"{v:.4f}" for v in vals) + f" | {'' if secs is None else f'{secs:.1f}'} |")
    sys.stdout.flush()


def mean_sq(cur, train, col):
    return q(cur, f"SELECT avg(w * w) FROM (SELECT sum({col}) AS w FROM {train} GROUP BY user_id, item_id) s")[0][0]


def run_dataset(cur, key, args):
    loaded = LOADERS[key](cur)
    if loaded is None:
        print(f"\nSKIP {key}: its files are not under {DATA} (set MEDIA_RECO_DATA)")
        return
    train, test, weights = loaded
    idx_cols = ", ".join(weights) if weights else None
    q(cur, f"CREATE INDEX ON {train} (user_id, item_id)" + (f" INCLUDE ({idx_cols})" if idx_cols else ""))
    q(cur, f"CREATE INDEX ON {train} (item_id)")
    q(cur, f"VACUUM ANALYZE {train}")
    q(cur, f"ANALYZE {test}")
    stats = q(cur, f"""SELECT (SELECT count(*) FROM {train}), (SELECT count(DISTINCT user_id) FROM {train}),
                              (SELECT count(DISTINCT item_id) FROM {train}), (SELECT count(*) FROM {test})""")[0]
    print(f"\n## {TITLES[key]}: train {stats[0]:,} rows, {stats[1]:,} users, {stats[2]:,} items; test {stats[3]:,} rows")
    r = Runner(cur, train, test)
    big = key == "lastfm"

    for weight in [None] + (weights if key == "lastfm" else []):
        wl = weight or "binary"
        scale = 1.0 if weight is None else mean_sq(cur, train, weight)
        rows = []
        for metric in ("cosine", "bm25"):
            vals, secs, _ = r.item(metric, weight=weight)
            rows.append((f"item {metric}, k = 50", vals, secs))
        if weight is None:
            vals, secs = r.user_based()
            rows.append(("user-based cosine (50 users)", vals, secs))
            rows.append(("most popular unseen items", r.popular, None))
        # EASE: lambda sweep at k = 50
        ease = []
        for lam in LAMBDAS:
            vals, secs, ph = r.item("ease", weight=weight, ease_lambda=lam * scale)
            ease.append((lam, vals, secs, ph))
            lab = f"EASE λ = {lam:g}" + (f" × {scale:.4g}" if weight else "") + ", k = 50"
            rows.append((lab, vals, secs))
            print(f"  {key} {wl} {lab}: p@10 {vals[0]:.4f} ndcg {vals[2]:.4f}, {secs:.1f} s ({phases_text(ph)})")
            sys.stdout.flush()
        best_lam = max(ease, key=lambda e: (e[1][2], e[1][0]))[0]     # by ndcg@10, then precision
        # RP3beta: alpha x beta grid at k = 50
        rp3 = []
        for a in ALPHAS:
            for b in BETAS:
                vals, secs, _ = r.item("rp3beta", weight=weight, rp3_alpha=a, rp3_beta=b)
                rp3.append(((a, b), vals, secs))
                rows.append((f"RP3beta α = {a:g}, β = {b:g}, k = 50", vals, secs))
        best_ab = max(rp3, key=lambda e: (e[1][2], e[1][0]))[0]
        # the default alpha and beta with fewer pairs supported by a single user
        for ms, sh in ((2, 0), (3, 0), (1, 10)):
            vals, secs, _ = r.item("rp3beta", weight=weight, min_support=ms, shrinkage=sh)
            rows.append((f"RP3beta α = 1, β = 0.5, k = 50, " +
                         (f"min_support = {ms}" if ms > 1 else f"shrinkage = {sh:g}"), vals, secs))
        # the best and the default lambda at k = 200; on Last.fm also the best with ease_max_items
        for lam in sorted({best_lam} if weight else {best_lam, 250}):
            vals, secs, ph = r.item("ease", k=200, weight=weight, ease_lambda=lam * scale)
            lab = f"EASE λ = {lam:g}" + (f" × {scale:.4g}" if weight else "") + ", k = 200"
            rows.append((lab, vals, secs))
            print(f"  {key} {wl} {lab}: p@10 {vals[0]:.4f} ndcg {vals[2]:.4f}, {secs:.1f} s ({phases_text(ph)})")
        if big and args.lastfm_max_items:
            vals, secs, ph = r.item("ease", weight=weight, ease_lambda=best_lam * scale,
                                    ease_max_items=args.lastfm_max_items)
            lab = f"EASE λ = {best_lam:g}" + (f" × {scale:.4g}" if weight else "") + \
                f", k = 50, ease_max_items = {args.lastfm_max_items}"
            rows.append((lab, vals, secs))
            print(f"  {key} {wl} {lab}: p@10 {vals[0]:.4f} ndcg {vals[2]:.4f}, {secs:.1f} s ({phases_text(ph)})")
        for a, b in sorted({best_ab, (1.0, 0.5)}):
            for k in (100, 200):
                vals, secs, _ = r.item("rp3beta", k=k, weight=weight, rp3_alpha=a, rp3_beta=b)
                rows.append((f"RP3beta α = {a:g}, β = {b:g}, k = {k}", vals, secs))
        table(f"{TITLES[key]}, {wl}, top 10", rows, "seconds (refresh; user-based: its evaluation)")
        print(f"best EASE λ by ndcg@10 (then precision@10): {best_lam:g}; best RP3beta (α, β): {best_ab}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="ua,mls,lastfm")
    ap.add_argument("--lastfm-max-items", type=int, default=5000,
                    help="ease_max_items of one extra EASE run on Last.fm (0: none)")
    args = ap.parse_args()
    conn = psycopg2.connect("")
    conn.autocommit = True
    cur = conn.cursor()
    q(cur, "DROP EXTENSION IF EXISTS media_reco CASCADE")
    q(cur, "CREATE EXTENSION media_reco")
    q(cur, "SET client_min_messages = warning")
    q(cur, "SET maintenance_work_mem = '4GB'")
    version = q(cur, "SELECT extversion FROM pg_extension WHERE extname = 'media_reco'")[0][0]
    print(f"# quality benchmark: media_reco {version}, {os.cpu_count()} cores, media_reco.threads = "
          f"{q(cur, 'SHOW media_reco.threads')[0][0]}")
    for key in args.data.split(","):
        run_dataset(cur, key, args)


if __name__ == "__main__":
    main()
