#!/usr/bin/python3
"""RP3beta in media_reco against scipy.sparse and against media_reco's cosine.

Run it through test/bench/rp3beta.sh, which builds, installs and starts a
throw-away cluster.  The data is test/bench/bench_item_similarity.py's 1M
set (synthetic_interactions(50000, 20000, 1000000, 42), weights = plays),
and in one run it times:

  * media_reco rp3beta refresh (alpha 1.0, beta 0.5 unless given), table in
    the database -> filled neighbour table, media_reco.threads = 1 and 2;
  * media_reco cosine on the same rows, threads = 1 and 2 (the issue asks
    rp3beta to stay within 1.5x of cosine's cost);
  * scipy.sparse, single thread (OPENBLAS_NUM_THREADS=1), arrays already in
    memory: W = (A/s)^a' (A/t)^a, then column scaling by s^-beta, the
    diagonal dropped, per-row top-k (ties by smaller id);

and checks media_reco's lists against scipy's on sampled items.  It prints
ratios from this one run; the README quotes them.
"""
import argparse
import io
import os
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import psycopg2
import scipy
import scipy.sparse as sp

CFG = dict(users=50_000, items=20_000, rows=1_000_000)
K = 50


def connect():
    conn = psycopg2.connect("")
    conn.autocommit = True
    return conn


def q(cur, sql, args=None):
    cur.execute(sql, args)
    return cur.fetchall() if cur.description else None


def refresh(name, threads, reps):
    """Best of reps refreshes, each on a fresh connection."""
    best = None
    for _ in range(reps):
        conn = connect()
        cur = conn.cursor()
        q(cur, "SET maintenance_work_mem = '1GB'")
        q(cur, "SET client_min_messages = warning")
        q(cur, "SET media_reco.threads = %s", (threads,))
        t = time.time()
        res = q(cur, "SELECT * FROM media_reco.refresh_neighbors(%s)", (name,))[0]
        wall = time.time() - t
        hist = q(cur, """SELECT read_seconds, compute_seconds, write_seconds, peak_memory_bytes
                           FROM media_reco.refresh_history WHERE recommender = %s
                          ORDER BY id DESC LIMIT 1""", (name,))[0]
        conn.close()
        run = dict(wall=wall, pairs=res[3], read=hist[0], compute=hist[1], write=hist[2], peak=hist[3])
        if best is None or run["wall"] < best["wall"]:
            best = run
    return best


def fetch_arrays(cur, table):
    buf = io.StringIO()
    cur.copy_expert(f"COPY (SELECT user_id, item_id, plays FROM {table}) TO STDOUT", buf)
    a = np.array(buf.getvalue().split(), dtype=np.int64).reshape(-1, 3)
    return a[:, 0], a[:, 1], a[:, 2].astype(np.float64)


def scipy_rp3beta(u, i, w, alpha, beta, k=K):
    """RP3beta item-item top-k as a scipy user would write it."""
    t0 = time.perf_counter()
    uu, ui = np.unique(u, return_inverse=True)
    ii, iinv = np.unique(i, return_inverse=True)
    A = sp.csr_matrix((w, (ui, iinv)), shape=(len(uu), len(ii)))
    A.sum_duplicates()
    t1 = time.perf_counter()
    s = np.asarray(A.sum(axis=0)).ravel()          # item popularity s(i)
    t = np.asarray(A.sum(axis=1)).ravel()          # user activity t(u)
    Piu = sp.csr_matrix(A.multiply(1.0 / s[None, :])).power(alpha).T.tocsr()   # items x users
    Pui = sp.csr_matrix(A.multiply(1.0 / t[:, None])).power(alpha)             # users x items
    W = (Piu @ Pui).tocsr()
    W = W @ sp.diags(s ** -beta)
    W = W.tocsr()
    t2 = time.perf_counter()
    W.setdiag(0)
    W.eliminate_zeros()
    out = {}
    for r in range(W.shape[0]):
        a, b = W.indptr[r], W.indptr[r + 1]
        d, c = W.data[a:b], W.indices[a:b]
        keep = d > 0
        d, c = d[keep], c[keep]
        if len(d) > k:
            idx = np.argpartition(-d, k)[:k]
            d, c = d[idx], c[idx]
        o = np.lexsort((c, -d))
        out[ii[r]] = (ii[c[o]], d[o])
    t3 = time.perf_counter()
    return dict(build=t1 - t0, product=t2 - t1, topk=t3 - t2, core=t3 - t1, total=t3 - t0, nnz=W.nnz), out


def compare(cur, name, ref, sample=300):
    """Largest relative similarity difference at equal ranks over sampled
    items, and the ranks whose ids differ: all of them, and those not
    explained by a tie (the two ids' values within 1e-12 relative, where
    summation order decides which comes first)."""
    items = sorted(ref.keys())[:: max(1, len(ref) // sample)]
    worst, id_diff, untied, example = 0.0, 0, 0, None
    for it in items:
        rows = q(cur, "SELECT neighbor_id, similarity FROM media_reco.similar_items(%s, %s, %s)",
                 (name, int(it), K))
        ids, sims = ref[it]
        if len(rows) != len(sims):
            id_diff += 1
            untied += 1
        for r, ((gi, gs), ri, rs) in enumerate(zip(rows, ids, sims)):
            worst = max(worst, abs(gs - rs) / abs(rs))
            if gi != ri:
                id_diff += 1
                # a tie: the reference holds gi at a value equal to rs, or gi falls just past its k
                tied = any(abs(sims[j] - rs) <= 1e-12 * rs for j in range(len(ids)) if ids[j] == gi) or \
                    (gi not in ids and abs(sims[-1] - rs) <= 1e-12 * rs)
                if not tied:
                    untied += 1
                    example = example or (int(it), r, int(gi), gs, int(ri), rs)
    return worst, id_diff, untied, example, len(items)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--alpha", type=float, default=1.0)
    ap.add_argument("--beta", type=float, default=0.5)
    ap.add_argument("--reps", type=int, default=2, help="media_reco refreshes per setting (best kept)")
    args = ap.parse_args()

    conn = connect()
    cur = conn.cursor()
    q(cur, "CREATE EXTENSION IF NOT EXISTS media_reco")
    version = q(cur, "SELECT extversion FROM pg_extension WHERE extname = 'media_reco'")[0][0]
    print(f"# RP3beta benchmark: media_reco {version}, scipy {scipy.__version__}, numpy {np.__version__}, "
          f"{os.cpu_count()} cores, alpha = {args.alpha:g}, beta = {args.beta:g}, k = {K}, "
          f"load {open('/proc/loadavg').read().split()[:3]}")
    table = "ev_1m"
    q(cur, f"DROP TABLE IF EXISTS {table} CASCADE")
    t = time.time()
    q(cur, f"""CREATE TABLE {table} AS
               SELECT user_id, item_id, plays FROM media_reco.synthetic_interactions(%s, %s, %s, 42)""",
      (CFG["users"], CFG["items"], CFG["rows"]))
    q(cur, f"CREATE INDEX ON {table} (user_id)")
    q(cur, f"VACUUM ANALYZE {table}")
    print(f"1M: {CFG['rows']:,} rows, {CFG['users']:,} users, {CFG['items']:,} items, weights = plays "
          f"(generated in {time.time() - t:.1f} s)")

    for name, metric in (("rp3", "rp3beta"), ("cos", "cosine")):
        q(cur, "SELECT media_reco.drop_recommender(name) FROM media_reco.recommenders WHERE name = %s", (name,))
        if metric == "rp3beta":
            q(cur, """SELECT media_reco.create_recommender(%s, %s, weight_col => 'plays', metric => 'rp3beta',
                                                           k => %s, rp3_alpha => %s, rp3_beta => %s)""",
              (name, table, K, args.alpha, args.beta))
        else:
            q(cur, "SELECT media_reco.create_recommender(%s, %s, weight_col => 'plays', k => %s)", (name, table, K))
    res = {}
    for th in (1, 2):
        for name in ("rp3", "cos"):
            r = refresh(name, th, args.reps)
            res[(name, th)] = r
            print(f"media_reco {'rp3beta' if name == 'rp3' else 'cosine'} threads={th}: {r['wall']:.2f} s table to table "
                  f"(read {r['read']:.2f}, compute {r['compute']:.2f}, write {r['write']:.2f}); {r['pairs']:,} rows; "
                  f"peak {r['peak'] / 2**20:.0f} MiB (best of {args.reps})")
    u, i, w = fetch_arrays(cur, table)
    sc, ref = scipy_rp3beta(u, i, w, args.alpha, args.beta)
    worst, id_diff, untied, example, checked = compare(cur, "rp3", ref)
    print(f"scipy {scipy.__version__} single thread: build {sc['build']:.2f} s + powers, product and scaling "
          f"{sc['product']:.2f} s + top-k {sc['topk']:.2f} s = {sc['core']:.2f} s without the build "
          f"({sc['total']:.2f} s with it; product nnz {sc['nnz']:,}); vs media_reco over {checked} items: "
          f"max relative difference {worst:.1e}, {id_diff} neighbour ids at equal ranks differ, {untied} of them "
          f"not between tied values" + (f" (e.g. item, rank, ours, theirs: {example})" if example else ""))
    print("\nsummary:")
    print("| media_reco.threads | rp3beta s | cosine s | rp3beta / cosine | scipy / rp3beta (without build) | (with build) |")
    print("|---|---|---|---|---|---|")
    for th in (1, 2):
        r, c = res[("rp3", th)]["wall"], res[("cos", th)]["wall"]
        print(f"| {th} | {r:.2f} | {c:.2f} | {r / c:.2f}x | {sc['core'] / r:.2f}x | {sc['total'] / r:.2f}x |")


if __name__ == "__main__":
    sys.exit(main())
