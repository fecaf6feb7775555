#!/usr/bin/python3
"""Side-by-side benchmark of media_reco's item-to-item refresh.

Run it through test/bench/run.sh, which builds, installs and starts a
throw-away cluster.  For each size it generates interactions with
media_reco.synthetic_interactions (seeded), then times in one run:

  * media_reco.refresh_neighbors: table in the database -> filled neighbour
    table (reading, computing and writing included);
  * scipy.sparse: A^T A on column-normalised A plus per-row top-k, single
    thread, from arrays already in memory (fetching them is not timed);
  * (1M only) the same cosine as a plain SQL self-join + window top-k;
  * recommend() latency for users with ~100 history items, and pgbench
    throughput with 8 clients (1M only).

It prints ratios from this one run; the README quotes them.
"""
import argparse
import io
import os
import statistics
import subprocess
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import psycopg2
import scipy
import scipy.sparse as sp

SIZES = {
    "1m": dict(users=50_000, items=20_000, rows=1_000_000),
    "10m": dict(users=200_000, items=50_000, rows=10_000_000),
}
K = 50


def connect():
    conn = psycopg2.connect("")
    conn.autocommit = True
    return conn


def q(cur, sql, args=None):
    cur.execute(sql, args)
    return cur.fetchall() if cur.description else None


def backend_peak_rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def make_table(cur, name, cfg, seed):
    q(cur, f"DROP TABLE IF EXISTS {name} CASCADE")
    t = time.time()
    q(cur, f"""CREATE TABLE {name} AS
               SELECT user_id, item_id, plays FROM media_reco.synthetic_interactions(%s, %s, %s, %s)""",
      (cfg["users"], cfg["items"], cfg["rows"], seed))
    q(cur, f"CREATE INDEX ON {name} (user_id)")
    q(cur, f"VACUUM ANALYZE {name}")
    return time.time() - t


def run_media_reco(name, threads):
    """Refresh twice on a fresh connection each time; keep the faster run."""
    best = None
    for _ in range(2):
        conn = connect()
        cur = conn.cursor()
        q(cur, "SET maintenance_work_mem = '4GB'")
        q(cur, "SET client_min_messages = warning")
        q(cur, "SET media_reco.threads = %s", (threads,))
        pid = q(cur, "SELECT pg_backend_pid()")[0][0]
        t = time.time()
        res = q(cur, "SELECT * FROM media_reco.refresh_neighbors(%s)", (name,))[0]
        wall = time.time() - t
        hist = q(cur, """SELECT read_seconds, compute_seconds, write_seconds, peak_memory_bytes
                           FROM media_reco.refresh_history WHERE recommender = %s
                          ORDER BY id DESC LIMIT 1""", (name,))[0]
        rss = backend_peak_rss_kb(pid)
        conn.close()
        run = dict(wall=wall, interactions=res[0], users=res[1], items=res[2], pairs=res[3],
                   read=hist[0], compute=hist[1], write=hist[2], peak_bytes=hist[3], rss_kb=rss)
        if best is None or run["wall"] < best["wall"]:
            best = run
    return best


def fetch_arrays(cur, name):
    buf = io.StringIO()
    cur.copy_expert(f"COPY (SELECT user_id, item_id, plays FROM {name}) TO STDOUT", buf)
    buf.seek(0)
    a = np.loadtxt(buf, dtype=np.float64, ndmin=2)
    return a[:, 0].astype(np.int64), a[:, 1].astype(np.int64), a[:, 2]


def run_scipy(u, i, w, k=K):
    """Cosine item-item top-k as a scipy user would write it."""
    t0 = time.time()
    uu, ui = np.unique(u, return_inverse=True)
    ii, iinv = np.unique(i, return_inverse=True)
    A = sp.csr_matrix((w, (ui, iinv)), shape=(len(uu), len(ii)))
    A.sum_duplicates()
    t1 = time.time()
    norms = np.sqrt(np.asarray(A.multiply(A).sum(axis=0)).ravel())
    norms[norms == 0] = 1
    An = sp.csc_matrix(A.multiply(1.0 / norms))
    S = (An.T @ An).tocsr()
    t2 = time.time()
    S.setdiag(0)
    S.eliminate_zeros()
    out = {}
    for r in range(S.shape[0]):
        s, e = S.indptr[r], S.indptr[r + 1]
        d = S.data[s:e]
        c = S.indices[s:e]
        keep = d > 0
        d, c = d[keep], c[keep]
        if len(d) > k:
            idx = np.argpartition(-d, k)[:k]
            d, c = d[idx], c[idx]
        o = np.lexsort((c, -d))
        out[ii[r]] = (ii[c[o]], d[o])
    t3 = time.time()
    return dict(build=t1 - t0, product=t2 - t1, topk=t3 - t2, core=t3 - t1, total=t3 - t0,
                nnz=S.nnz), out


def compare_with_scipy(cur, name, ref, sample=300):
    items = sorted(ref.keys())[:: max(1, len(ref) // sample)]
    worst = 0.0
    for it in items:
        rows = q(cur, "SELECT neighbor_id, similarity FROM media_reco.similar_items(%s, %s, %s)",
                 (name, int(it), K))
        ids, sims = ref[it]
        n = min(len(rows), len(sims))
        if len(rows) != len(sims):
            worst = max(worst, 1.0)
        for r in range(n):
            worst = max(worst, abs(rows[r][1] - sims[r]))
    return worst, len(items)


SQL_BASELINE = """
CREATE TABLE sql_neighbors AS
WITH w AS (SELECT user_id u, item_id i, sum(plays)::float8 w FROM {t} GROUP BY 1, 2),
n AS (SELECT i, sqrt(sum(w * w)) norm FROM w GROUP BY i),
p AS (SELECT a.i, b.i j, sum(a.w * b.w) dot, count(*) sup
        FROM w a JOIN w b ON a.u = b.u AND a.i <> b.i GROUP BY 1, 2),
s AS (SELECT p.i, p.j, p.dot / (na.norm * nb.norm) sim, p.sup
        FROM p JOIN n na ON na.i = p.i JOIN n nb ON nb.i = p.j),
r AS (SELECT *, row_number() OVER (PARTITION BY i ORDER BY sim DESC, j) rk FROM s WHERE sim > 0)
SELECT i, j, sim, sup, rk FROM r WHERE rk <= {k}
"""


def run_sql_baseline(cur, table, name, timeout_min):
    q(cur, "DROP TABLE IF EXISTS sql_neighbors")
    q(cur, "SET work_mem = '1GB'")
    q(cur, f"SET statement_timeout = '{timeout_min}min'")
    t = time.time()
    try:
        q(cur, SQL_BASELINE.format(t=table, k=K))
        ok = True
    except psycopg2.errors.QueryCanceled:
        ok = False
    elapsed = time.time() - t
    q(cur, "RESET statement_timeout")
    q(cur, "RESET work_mem")
    diff = None
    if ok:
        diff = q(cur, """SELECT count(*) FILTER (WHERE abs(s.sim - n.similarity) > 1e-9 OR n.similarity IS NULL)
                           FROM sql_neighbors s LEFT JOIN media_reco.item_neighbors n
                             ON n.recommender = %s AND n.item_id = s.i AND n.rank = s.rk""", (name,))[0][0]
    return elapsed, ok, diff


def run_latency(cur, name, table):
    users = [r[0] for r in q(cur, f"""SELECT user_id FROM {table} GROUP BY 1
                                      HAVING count(DISTINCT item_id) BETWEEN 90 AND 110
                                      ORDER BY user_id LIMIT 200""")]
    q(cur, "PREPARE rec(bigint) AS SELECT * FROM media_reco.recommend(%s, $1, 10)" % psycopg2.extensions.adapt(name).getquoted().decode())
    for uid in users[:20]:
        q(cur, "EXECUTE rec(%s)", (uid,))
    times = []
    for uid in users:
        t = time.perf_counter()
        q(cur, "EXECUTE rec(%s)", (uid,))
        times.append((time.perf_counter() - t) * 1000)
    q(cur, "DEALLOCATE rec")
    times.sort()
    return dict(users=len(users), p50=statistics.median(times), p95=times[int(len(times) * 0.95) - 1])


def run_pgbench(name, n_users, seconds=20):
    script = f"\\set uid random(1, {n_users})\nSELECT * FROM media_reco.recommend('{name}', :uid, 10);\n"
    path = "/tmp/media_reco_pgbench.sql"
    with open(path, "w") as f:
        f.write(script)
    out = subprocess.run(["pgbench", "-n", "-M", "prepared", "-c", "8", "-j", "2", "-T", str(seconds), "-f", path],
                         capture_output=True, text=True)
    tps = None
    for line in out.stdout.splitlines():
        if line.startswith("tps ="):
            tps = float(line.split()[2])
    return tps


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1m,10m")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-sql", action="store_true", help="skip the plain SQL baseline at 1M")
    ap.add_argument("--sql-timeout-min", type=int, default=30)
    args = ap.parse_args()

    conn = connect()
    cur = conn.cursor()
    q(cur, "CREATE EXTENSION IF NOT EXISTS media_reco")
    print(f"# media_reco benchmark; scipy {scipy.__version__}, numpy {np.__version__}, "
          f"{os.cpu_count()} cores, media_reco.threads = {args.threads}")
    report = []
    for size in args.sizes.split(","):
        cfg = SIZES[size]
        table = f"ev_{size}"
        name = f"bench_{size}"
        gen = make_table(cur, table, cfg, seed=42)
        print(f"\n## {size}: {cfg['rows']:,} rows, {cfg['users']:,} users, {cfg['items']:,} items (generated in {gen:.1f} s)")
        q(cur, "SELECT media_reco.drop_recommender(name) FROM media_reco.recommenders WHERE name = %s", (name,))
        q(cur, "SELECT media_reco.create_recommender(%s, %s, weight_col => 'plays', k => %s)", (name, table, K))
        mr = run_media_reco(name, args.threads)
        print(f"media_reco refresh: {mr['wall']:.2f} s (read {mr['read']:.2f}, compute {mr['compute']:.2f}, "
              f"write {mr['write']:.2f}); {mr['pairs']:,} neighbour rows; peak memory {mr['peak_bytes'] / 2**20:.0f} MB "
              f"(backend VmHWM {mr['rss_kb'] / 1024 if mr['rss_kb'] else float('nan'):.0f} MB)")
        u, i, w = fetch_arrays(cur, table)
        try:
            sc, ref = run_scipy(u, i, w)
            worst, checked = compare_with_scipy(cur, name, ref)
            print(f"scipy {scipy.__version__}: build {sc['build']:.2f} s + AtA {sc['product']:.2f} s + top-k {sc['topk']:.2f} s "
                  f"= {sc['total']:.2f} s (product nnz {sc['nnz']:,}); max |sim diff| vs media_reco over "
                  f"{checked} items: {worst:.2e}")
            print(f"ratio: scipy (AtA + top-k only) / media_reco (table to table) = {sc['core'] / mr['wall']:.2f}x; "
                  f"including scipy's matrix build = {sc['total'] / mr['wall']:.2f}x")
            report.append((size, "scipy", sc["core"], mr["wall"]))
            del ref
        except MemoryError:
            print("scipy: out of memory")
            report.append((size, "scipy", None, mr["wall"]))
        if size == "1m" and not args.no_sql:
            el, ok, diff = run_sql_baseline(cur, table, name, args.sql_timeout_min)
            status = f"{el:.1f} s" if ok else f"> {el:.0f} s (cancelled)"
            print(f"plain SQL self-join + window top-k: {status}; rows differing from media_reco: {diff}")
            print(f"ratio: SQL / media_reco = {el / mr['wall']:.0f}x{'' if ok else ' (lower bound)'}")
            report.append((size, "sql", el, mr["wall"]))
        lat = run_latency(cur, name, table)
        print(f"recommend() for {lat['users']} users with 90-110 history items, index on (user_id): "
              f"p50 {lat['p50']:.2f} ms, p95 {lat['p95']:.2f} ms")
        # the index README recommends: the history becomes an index-only scan
        q(cur, f"CREATE INDEX ON {table} (user_id, item_id) INCLUDE (plays)")
        q(cur, f"VACUUM ANALYZE {table}")
        q(cur, "VACUUM ANALYZE media_reco.neighbor_store")
        lat = run_latency(cur, name, table)
        print(f"recommend() for {lat['users']} users with 90-110 history items, covering index (user_id, item_id) "
              f"INCLUDE (plays): p50 {lat['p50']:.2f} ms, p95 {lat['p95']:.2f} ms")
        if size == "1m":
            tps = run_pgbench(name, cfg["users"])
            print(f"pgbench, 8 clients, random users, recommend(k = 10): {tps:.0f} TPS")
    print("\nsummary (ratio = other / media_reco, higher is better for media_reco):")
    for size, other, t_other, t_mr in report:
        r = f"{t_other / t_mr:.2f}x" if t_other else "n/a"
        print(f"  {size:>4} vs {other:<6} {r}")


if __name__ == "__main__":
    sys.exit(main())
