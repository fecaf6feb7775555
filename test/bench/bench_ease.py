#!/usr/bin/python3
"""EASE in media_reco against numpy on the same machine, and serving from it.

Run it through test/bench/ease.sh, which builds, installs and starts a
throw-away cluster.  For each size it generates interactions with
media_reco.synthetic_interactions (seed 42), binary weights (no weight
column: one per row, repeated rows summed), then times in one run:

  * media_reco: create_recommender(metric => 'ease') + refresh_neighbors,
    table in the database -> filled neighbour table, for k = 200 and 50 on
    media_reco.threads = 2 and 1 (a fresh connection per refresh, so the
    backend's VmHWM is that refresh's), with refresh_history's phases and
    peak_memory_bytes against the 8 n^2 bytes of one dense matrix;
  * numpy: np.linalg.inv(G + lambda I), the division B = -P / diag(P), the
    same exclusions (diagonal, pairs no user shares) and a per-row top-k,
    from G already in memory (G = X'X from the same rows, not timed); one
    inverse serves both k, each k's time being inverse + division + its top-k.
    Debian's numpy calls the threaded OpenBLAS (openblas-pthread); this
    script lets it use OPENBLAS_NUM_THREADS threads (2 unless set);
  * recommend(k = 10) latency for users with 90-110 history items on the
    EASE k = 200 recommender and on cosine k = 50 over the same rows, with
    the covering index (user_id, item_id) INCLUDE (plays), the two
    recommenders' calls interleaved.

It prints ratios from this one run; the README quotes them.
"""
import argparse
import io
import json
import os
import statistics
import sys
import threading
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "2")
os.environ.setdefault("OMP_NUM_THREADS", os.environ["OPENBLAS_NUM_THREADS"])

import numpy as np
import psycopg2
import scipy.sparse as sp

SIZES = {
    "5k": dict(users=50_000, items=5_000, rows=1_000_000),
    "10k": dict(users=100_000, items=10_000, rows=2_000_000),
}
LAMBDA = 250.0


def connect():
    conn = psycopg2.connect("")
    conn.autocommit = True
    return conn


def q(cur, sql, args=None):
    cur.execute(sql, args)
    return cur.fetchall() if cur.description else None


def proc_status_kb(pid, field):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class AnonSampler(threading.Thread):
    """Largest RssAnon (private memory) of a process, sampled every 10 ms."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop = pid, 0, threading.Event()

    def run(self):
        while not self.stop.is_set():
            v = proc_status_kb(self.pid, "RssAnon")
            if v is not None:
                self.peak = max(self.peak, v)
            self.stop.wait(0.01)


def make_table(cur, name, cfg, seed):
    q(cur, f"DROP TABLE IF EXISTS {name} CASCADE")
    t = time.time()
    q(cur, f"""CREATE TABLE {name} AS
               SELECT user_id, item_id, plays FROM media_reco.synthetic_interactions(%s, %s, %s, %s)""",
      (cfg["users"], cfg["items"], cfg["rows"], seed))
    # the README's covering index, so recommend()'s history read is index-only
    q(cur, f"CREATE INDEX ON {name} (user_id, item_id) INCLUDE (plays)")
    q(cur, f"VACUUM ANALYZE {name}")
    return time.time() - t


def create(cur, name, table, metric, k):
    q(cur, "SELECT media_reco.drop_recommender(name) FROM media_reco.recommenders WHERE name = %s", (name,))
    if metric == "ease":
        q(cur, "SELECT media_reco.create_recommender(%s, %s, metric => 'ease', k => %s, ease_lambda => %s)",
          (name, table, k, LAMBDA))
    else:
        q(cur, "SELECT media_reco.create_recommender(%s, %s, metric => %s, k => %s)", (name, table, metric, k))


def refresh(name, threads):
    """One refresh on a fresh connection: wall time, history row, backend memory."""
    conn = connect()
    cur = conn.cursor()
    q(cur, "SET maintenance_work_mem = '4GB'")
    q(cur, "SET client_min_messages = warning")
    q(cur, "SET media_reco.threads = %s", (threads,))
    pid = q(cur, "SELECT pg_backend_pid()")[0][0]
    base_hwm = proc_status_kb(pid, "VmHWM")
    sampler = AnonSampler(pid)
    sampler.start()
    t = time.time()
    res = q(cur, "SELECT * FROM media_reco.refresh_neighbors(%s)", (name,))[0]
    wall = time.time() - t
    sampler.stop.set()
    sampler.join()
    hwm = proc_status_kb(pid, "VmHWM")
    hist = q(cur, """SELECT read_seconds, compute_seconds, write_seconds, peak_memory_bytes, parameters
                       FROM media_reco.refresh_history WHERE recommender = %s
                      ORDER BY id DESC LIMIT 1""", (name,))[0]
    conn.close()
    params = hist[4] if isinstance(hist[4], dict) else json.loads(hist[4])
    return dict(wall=wall, interactions=res[0], users=res[1], items=res[2], pairs=res[3],
                read=hist[0], compute=hist[1], write=hist[2], peak_bytes=hist[3],
                phases=params.get("phases"), hwm_kb=hwm, base_hwm_kb=base_hwm, anon_kb=sampler.peak)


def fmt_phases(ph):
    """'gram 0.41, factor 2.10, ...' from whatever shape parameters->'phases' has."""
    if ph is None:
        return "(no phases recorded)"
    if isinstance(ph, dict):
        items = ph.items()
    else:  # a list of {"phase": ..., "seconds": ...}
        items = [(p.get("phase") or p.get("name"), p) for p in ph]
    out = []
    for k, v in items:
        if isinstance(v, dict):
            v = v.get("seconds", v)
        out.append(f"{k} {v:.2f}" if isinstance(v, (int, float)) else f"{k} {v}")
    return ", ".join(out)


def fetch_arrays(cur, table):
    buf = io.StringIO()
    cur.copy_expert(f"COPY (SELECT user_id, item_id FROM {table}) TO STDOUT", buf)
    a = np.array(buf.getvalue().split(), dtype=np.int64).reshape(-1, 2)
    return a[:, 0], a[:, 1]


def gram(u, i):
    """G = X'X over the binary rows (repeats summed), item ids ascending."""
    uu, ui = np.unique(u, return_inverse=True)
    ii, iinv = np.unique(i, return_inverse=True)
    X = sp.csr_matrix((np.ones(len(u)), (ui, iinv)), shape=(len(uu), len(ii)))
    X.sum_duplicates()
    return ii, (X.T @ X).toarray()


def numpy_ease(G, lam, ks, block=1000):
    """EASE as a numpy user writes it: one inverse, then a top-k per k.

    Returns the seconds of the inverse, of the division and exclusions, and
    of each k's per-row top-k, with each k's lists (neighbour index, value).
    """
    n = G.shape[0]
    t0 = time.perf_counter()
    P = np.linalg.inv(G + lam * np.eye(n))
    t1 = time.perf_counter()
    B = P / (-np.diag(P))            # B[i][j] = -P[i][j] / P[j][j]
    del P
    np.fill_diagonal(B, 0.0)
    B[G == 0] = 0.0                  # min_support 1: pairs no user shares are never neighbours
    t2 = time.perf_counter()
    topk, lists = {}, {}
    for k in ks:
        t3 = time.perf_counter()
        nb = np.empty((n, k), dtype=np.int64)
        sim = np.empty((n, k))
        for s in range(0, n, block):
            R = B[s:s + block]
            idx = np.argpartition(-R, k - 1, axis=1)[:, :k]
            val = np.take_along_axis(R, idx, axis=1)
            o = np.lexsort((idx, -val), axis=1)
            nb[s:s + block] = np.take_along_axis(idx, o, axis=1)
            sim[s:s + block] = np.take_along_axis(val, o, axis=1)
        topk[k] = time.perf_counter() - t3
        lists[k] = (nb, sim)
    return dict(inv=t1 - t0, div=t2 - t1, topk=topk), lists


def compare(cur, name, ids, nb, sim, k, sample=200):
    """Largest relative similarity difference and id mismatches, sampled items."""
    rows_checked, worst, id_diff = 0, 0.0, 0
    for r in range(0, len(ids), max(1, len(ids) // sample)):
        got = q(cur, "SELECT neighbor_id, similarity FROM media_reco.similar_items(%s, %s, %s)",
                (name, int(ids[r]), k))
        keep = sim[r] > 0
        ref_ids, ref_sim = ids[nb[r][keep]], sim[r][keep]
        if len(got) != len(ref_sim):
            id_diff += 1
        for (gi, gs), ri, rs in zip(got, ref_ids, ref_sim):
            worst = max(worst, abs(gs - rs) / abs(rs))
            id_diff += gi != ri
        rows_checked += 1
    return worst, id_diff, rows_checked


def run_latency(cur, names, table, calls):
    """recommend(k = 10) latency of several recommenders over the same users,
    the calls interleaved (one per recommender in turn) so that a busy
    machine slows them alike."""
    # the cluster runs with synchronous_commit = off for the refreshes' sake; serving is measured with
    # the default, which the read path's latency depends on (off made every call about 2x slower here)
    q(cur, "SET synchronous_commit = on")
    users = [r[0] for r in q(cur, f"""SELECT user_id FROM {table} GROUP BY 1
                                      HAVING count(DISTINCT item_id) BETWEEN 90 AND 110
                                      ORDER BY user_id LIMIT %s""", (calls,))]
    for n, name in enumerate(names):
        q(cur, f"PREPARE rec{n}(bigint) AS SELECT * FROM media_reco.recommend(%s, $1, 10)"
          % psycopg2.extensions.adapt(name).getquoted().decode())
        for uid in users[:20]:
            q(cur, f"EXECUTE rec{n}(%s)", (uid,))
    times = [[] for _ in names]
    for c in range(calls):
        for n in range(len(names)):
            t = time.perf_counter()
            q(cur, f"EXECUTE rec{n}(%s)", (users[c % len(users)],))
            times[n].append((time.perf_counter() - t) * 1000)
    out = []
    for n in range(len(names)):
        q(cur, f"DEALLOCATE rec{n}")
        ts = sorted(times[n])
        out.append(dict(users=len(users), calls=calls, p50=statistics.median(ts), p95=ts[int(len(ts) * 0.95) - 1]))
    return out


def serving(cur, size, table, threads, calls, ease_refreshed=False):
    """EASE k = 200 against cosine k = 50 on the same rows, calls interleaved."""
    ease = f"ease_{size}_k200"
    if not ease_refreshed:
        create(cur, ease, table, "ease", 200)
        refresh(ease, threads)
    cos = f"cos_{size}_k50"
    create(cur, cos, table, "cosine", 50)
    refresh(cos, threads)
    q(cur, "VACUUM ANALYZE media_reco.neighbor_store")
    lats = run_latency(cur, [ease, cos], table, calls)
    for label, lat in zip(("ease k = 200", "cosine k = 50"), lats):
        print(f"recommend(k = 10) on {label}: {lat['calls']} calls over {lat['users']} users with 90-110 "
              f"history items, covering index: p50 {lat['p50']:.2f} ms, p95 {lat['p95']:.2f} ms")
    print(f"ratio of p50s ease k = 200 / cosine k = 50 = {lats[0]['p50'] / lats[1]['p50']:.2f}")
    sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="5k,10k")
    ap.add_argument("--ks", default="200,50")
    ap.add_argument("--threads", default="2,1")
    ap.add_argument("--calls", type=int, default=500)
    ap.add_argument("--serving-only", action="store_true",
                    help="only the recommend() latency (EASE k = 200 against cosine k = 50): a few minutes")
    args = ap.parse_args()
    ks = [int(x) for x in args.ks.split(",")]
    threads = [int(x) for x in args.threads.split(",")]

    conn = connect()
    cur = conn.cursor()
    q(cur, "CREATE EXTENSION IF NOT EXISTS media_reco")
    version = q(cur, "SELECT extversion FROM pg_extension WHERE extname = 'media_reco'")[0][0]
    print(f"# EASE benchmark: media_reco {version}, numpy {np.__version__} "
          f"(OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']}), {os.cpu_count()} cores, "
          f"lambda = {LAMBDA:g}, load {open('/proc/loadavg').read().split()[:3]}")
    summary = []
    for size in args.sizes.split(","):
        cfg = SIZES[size]
        table = f"ease_{size}"
        gen = make_table(cur, table, cfg, seed=42)
        n_pairs = q(cur, f"SELECT count(*) FROM (SELECT DISTINCT user_id, item_id FROM {table}) s")[0][0]
        print(f"\n## {size}: {cfg['rows']:,} rows ({n_pairs:,} distinct user-item pairs), "
              f"{cfg['users']:,} users, {cfg['items']:,} items (generated in {gen:.1f} s)")
        if args.serving_only:
            serving(cur, size, table, max(threads), args.calls)
            continue
        u, i = fetch_arrays(cur, table)
        ids, G = gram(u, i)
        n = len(ids)
        dense = 8 * n * n
        print(f"n = {n} items with rows; one dense n x n float64 matrix = {dense / 2**20:.0f} MiB")
        mr = {}
        for k in ks:
            name = f"ease_{size}_k{k}"
            create(cur, name, table, "ease", k)
            for th in threads:
                r = refresh(name, th)
                mr[(k, th)] = r
                print(f"media_reco ease k={k} threads={th}: {r['wall']:.2f} s table to table "
                      f"(read {r['read']:.2f}, compute {r['compute']:.2f}, write {r['write']:.2f}; "
                      f"phases: {fmt_phases(r['phases'])}); {r['pairs']:,} neighbour rows")
                print(f"    peak_memory_bytes {r['peak_bytes'] / 2**20:.0f} MiB = {r['peak_bytes'] / dense:.3f} x 8n^2; "
                      f"backend VmHWM {r['hwm_kb'] / 1024:.0f} MiB (before the call {r['base_hwm_kb'] / 1024:.0f} MiB) "
                      f"= {r['hwm_kb'] * 1024 / dense:.3f} x 8n^2; sampled peak RssAnon "
                      f"{r['anon_kb'] / 1024:.0f} MiB = {r['anon_kb'] * 1024 / dense:.3f} x 8n^2")
                sys.stdout.flush()
        npt, lists = numpy_ease(G, LAMBDA, ks)
        print(f"numpy: inv {npt['inv']:.2f} s + division and exclusions {npt['div']:.2f} s + per-row top-k "
              + ", ".join(f"{npt['topk'][k]:.2f} s (k = {k})" for k in ks) + " (G in memory)")
        for k in ks:
            worst, id_diff, checked = compare(cur, f"ease_{size}_k{k}", ids, *lists[k], k)
            total = npt["inv"] + npt["div"] + npt["topk"][k]
            print(f"k = {k}: numpy {total:.2f} s; vs media_reco over {checked} sampled items: max relative "
                  f"similarity difference {worst:.1e}, {id_diff} neighbour ids differ")
            for th in threads:
                r = mr[(k, th)]
                ratio = total / r["wall"]
                print(f"ratio numpy / media_reco (k = {k}, threads = {th}, table to table) = {ratio:.2f}x")
                summary.append((size, k, th, r["wall"], total, ratio, r["peak_bytes"] / dense,
                                r["hwm_kb"] * 1024 / dense, r["anon_kb"] * 1024 / dense, fmt_phases(r["phases"])))
        del lists
        if 200 in ks:
            serving(cur, size, table, max(threads), args.calls, ease_refreshed=True)
        del G
    print("\nsummary (ratio = numpy / media_reco; memory as multiples of one 8n^2 matrix):")
    print("| size | k | threads | media_reco s | numpy s | ratio | peak_memory_bytes | VmHWM | RssAnon | phases s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for size, k, th, t_mr, t_np, ratio, pk, hwm, anon, ph in summary:
        print(f"| {size} | {k} | {th} | {t_mr:.2f} | {t_np:.2f} | {ratio:.2f}x | {pk:.3f} | {hwm:.3f} | {anon:.3f} | {ph} |")


if __name__ == "__main__":
    sys.exit(main())
