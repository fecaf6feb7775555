#!/usr/bin/python3
"""Implicit ALS in media_reco against numpy on the same machine and data.

Run it through test/bench/als.sh, which builds, installs and starts a
throw-away cluster.  Two modes.

Speed (default).  For each size it generates interactions with
media_reco.synthetic_interactions (seed 42; no weight column: one per row,
repeated rows summed, so w = views and c = 1 + alpha * views), then in one run:

  * media_reco.train_als with factors 64 (cg_steps 3, and 0 = exact solve),
    on a fresh connection per training (so the backend's VmHWM is that
    training's), media_reco.threads as given; seconds per iteration from the
    per-iteration NOTICEs when they carry times, else from the result's
    seconds / iterations; the loss per iteration from the NOTICEs;
  * numpy (test/bench/als_reference.py) on the same rows, fetched with COPY:
    the CG variant (warm-started, as the `implicit` library does it) and the
    exact variant (batched np.linalg.solve), seconds per iteration (median
    over the iterations, loss computation not counted) and the process's
    peak RSS above its level before training (VmHWM reset through
    /proc/self/clear_refs);
  * ratios numpy / media_reco from this one run; with --rounds N each
    cg_steps's media_reco trainings and numpy run are repeated N times,
    interleaved (media_reco, numpy, media_reco, numpy, ...), and the
    median of the per-round ratios is reported (one pair moves by +-25 %
    on a busy shared machine);
  * recommend_als(k = 10) latency, p50 and p95, for users with 90-110
    history items, with and without recalculate => true (calls
    interleaved), with the covering index (user_id, item_id) INCLUDE (plays);
    and a check that recalculate => true lists the items numpy's exact
    solve of the user's current history against the stored item factors
    ranks first (als_reference.recalculate), when the factor table is
    readable (media_reco.item_factors, columns found by type).

Sizes: 1m = 1,000,000 rows, 50,000 users, 20,000 items; 10m = 10,000,000
rows, 200,000 users, 100,000 items.

Quality (--quality).  MovieLens 100K ua.base -> ua.test and ml-latest-small
(split_interactions 'temporal', 0.2, the same split as bench_quality.py),
binary and rating weights: media_reco.train_als for each configuration
(--configs, "factors:lambda:alpha", and the defaults), scored with
media_reco.evaluate when it accepts the ALS model (else the same metric
functions over recommend_als), beside numpy's ALS with the same
hyper-parameters on the same split read back from the database, numpy's
evaluation of media_reco's own factors (which must agree with evaluate up
to ties) and the popularity baseline.  Training differs only in the
initial factors, so the metrics agree closely, not exactly.

Prints markdown tables; the README quotes them.
"""
import argparse
import io
import json
import os
import re
import statistics
import sys
import threading
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "2")
os.environ.setdefault("OMP_NUM_THREADS", os.environ["OPENBLAS_NUM_THREADS"])

import numpy as np
import psycopg2

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import als_reference as ref  # noqa: E402

SIZES = {
    "1m": dict(users=50_000, items=20_000, rows=1_000_000),
    "10m": dict(users=200_000, items=100_000, rows=10_000_000),
}
METRICS = ref.METRICS


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


def has_als(cur):
    return q(cur, """SELECT to_regprocedure('media_reco.train_als(text,regclass,name,name,name,jsonb)') IS NOT NULL
                       AND EXISTS (SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                                    WHERE n.nspname = 'media_reco' AND p.proname = 'recommend_als')""")[0][0]


def als_options(factors, lam, alpha, iterations, cg_steps, seed=42):
    o = dict(factors=factors, iterations=iterations, cg_steps=cg_steps, seed=seed)
    if lam is not None:
        o["regularization"] = lam
    if alpha is not None:
        o["alpha"] = alpha
    return o


NOTICE_ITER = re.compile(r"iteration\s+(\d+)", re.I)
NOTICE_LOSS = re.compile(r"loss[\s=:]+([-+0-9.eE]+)", re.I)
NOTICE_SECS = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*(?:s|sec|seconds)\b")


def parse_notices(notices):
    """Per-iteration (iteration, loss, seconds or None) from train_als's NOTICEs."""
    out = []
    for n in notices:
        m = NOTICE_ITER.search(n)
        if not m:
            continue
        loss = NOTICE_LOSS.search(n)
        secs = NOTICE_SECS.findall(n)
        out.append((int(m.group(1)), float(loss.group(1)) if loss else None,
                    float(secs[-1]) if secs else None))
    return out


def train_mr(name, table, options, threads=None, weight_col=None, mwm="8GB"):
    """One train_als on a fresh connection: result row, notices, wall, memory."""
    conn = connect()
    cur = conn.cursor()
    q(cur, "SET maintenance_work_mem = %s", (mwm,))
    q(cur, "SET client_min_messages = notice")
    if threads is not None:
        q(cur, "SET media_reco.threads = %s", (threads,))
    pid = q(cur, "SELECT pg_backend_pid()")[0][0]
    base_hwm = proc_status_kb(pid, "VmHWM")
    sampler = AnonSampler(pid)
    sampler.start()
    del conn.notices[:]
    t = time.time()
    row = q(cur, "SELECT * FROM media_reco.train_als(%s, %s, weight_col => %s, options => %s)",
            (name, table, weight_col, json.dumps(options)))[0]
    wall = time.time() - t
    sampler.stop.set()
    sampler.join()
    hwm = proc_status_kb(pid, "VmHWM")
    notices = [n.strip() for n in conn.notices]
    conn.close()
    res = dict(zip(("model_name", "users", "items", "factors", "iterations", "train_loss", "seconds"), row))
    its = parse_notices(notices)
    per_iter = [s for _, _, s in its if s is not None]
    res.update(wall=wall, notices=notices, iters=its, hwm_kb=hwm, base_hwm_kb=base_hwm, anon_kb=sampler.peak,
               sec_per_iter=(statistics.median(per_iter) if per_iter
                             else res["seconds"] / max(1, res["iterations"])),
               per_iter_source="NOTICE median" if per_iter else "seconds / iterations")
    return res


def fetch_pairs(cur, table, weight_col=None):
    cols = "user_id, item_id" + (f", {weight_col}" if weight_col else "")
    buf = io.StringIO()
    cur.copy_expert(f"COPY (SELECT {cols} FROM {table}) TO STDOUT", buf)
    a = np.array(buf.getvalue().split(), dtype=np.float64).reshape(-1, 3 if weight_col else 2)
    return a[:, 0].astype(np.int64), a[:, 1].astype(np.int64), (a[:, 2] if weight_col else None)


def reset_hwm():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def numpy_run(data, factors, lam, alpha, iterations, cg_steps, seed=42):
    """Per-iteration seconds (median), losses and peak RSS above the start."""
    reset_ok = reset_hwm()
    base = proc_status_kb("self", "VmRSS")
    X, Y, hist = ref.train(data, factors, lam, alpha, iterations, cg_steps, seed)
    peak = proc_status_kb("self", "VmHWM")
    secs = [h["seconds"] for h in hist]
    return dict(sec_per_iter=statistics.median(secs), seconds=secs, loss=[h["loss"] for h in hist],
                loss_seconds=statistics.median([h["loss_seconds"] for h in hist]),
                peak_kb=(peak - base) if reset_ok else None, X=X, Y=Y)


def find_factor_table(cur, kind):
    """(table, model column, id column, factors column) of media_reco.<kind>_factors, or None."""
    cols = q(cur, """SELECT column_name, data_type, udt_name FROM information_schema.columns
                      WHERE table_schema = 'media_reco' AND table_name = %s ORDER BY ordinal_position""",
             (f"{kind}_factors",))
    if not cols:
        return None
    model = next((c for c, t, _ in cols if t == "text" or c.startswith("model")), None)
    ident = next((c for c, t, _ in cols if c == f"{kind}_id"), None)
    fac = next((c for c, t, u in cols if t == "ARRAY"), None)
    if not (model and ident and fac):
        return None
    return f"media_reco.{kind}_factors", model, ident, fac


def fetch_factors(cur, kind, name):
    """(ids ascending, factors float32) of a model, or None when the table is not found."""
    t = find_factor_table(cur, kind)
    if t is None:
        return None
    table, model, ident, fac = t
    rows = q(cur, f"SELECT {ident}, {fac}::float4[] FROM {table} WHERE {model} = %s ORDER BY {ident}", (name,))
    if not rows:
        return None
    return np.array([r[0] for r in rows], dtype=np.int64), np.array([r[1] for r in rows], dtype=np.float32)


def history_users(cur, table, calls, lo=90, hi=110):
    return [r[0] for r in q(cur, f"""SELECT user_id FROM {table} GROUP BY 1
                                     HAVING count(DISTINCT item_id) BETWEEN %s AND %s
                                     ORDER BY user_id LIMIT %s""", (lo, hi, calls))]


def run_latency(cur, name, users, calls):
    """recommend_als(k = 10) latency with recalculate false and true, interleaved."""
    lit = psycopg2.extensions.adapt(name).getquoted().decode()
    for n, recalc in enumerate(("false", "true")):
        q(cur, f"PREPARE als{n}(bigint) AS SELECT * FROM media_reco.recommend_als({lit}, $1, 10, "
               f"recalculate => {recalc})")
        for uid in users[:20]:
            q(cur, f"EXECUTE als{n}(%s)", (uid,))
    times = [[], []]
    for c in range(calls):
        for n in range(2):
            t = time.perf_counter()
            q(cur, f"EXECUTE als{n}(%s)", (users[c % len(users)],))
            times[n].append((time.perf_counter() - t) * 1000)
    out = []
    for n in range(2):
        q(cur, f"DEALLOCATE als{n}")
        ts = sorted(times[n])
        out.append(dict(p50=statistics.median(ts), p95=ts[int(len(ts) * 0.95) - 1]))
    return out


def check_recalculate(cur, name, table, users, lam, alpha, sample=20):
    """recommend_als(recalculate => true) against numpy's exact solve over the stored item factors."""
    got = fetch_factors(cur, "item", name)
    if got is None:
        return "item factor table not found (media_reco.item_factors): recalculate check skipped"
    ids, Y = got
    pos = {int(v): j for j, v in enumerate(ids)}
    worst, mism, checked = 0.0, 0, 0
    for uid in users[:sample]:
        hist = q(cur, f"SELECT item_id, count(*)::float8 FROM {table} WHERE user_id = %s GROUP BY 1", (uid,))
        idx = np.array([pos[int(i)] for i, _ in hist if int(i) in pos])
        w = np.array([c for i, c in hist if int(i) in pos])
        x = ref.recalculate(idx, w, Y, alpha, lam)
        s = Y.astype(np.float64) @ x
        s[idx] = -np.inf
        top = np.lexsort((ids, -s))[:10]
        rows = q(cur, "SELECT item_id, score FROM media_reco.recommend_als(%s, %s, 10, recalculate => true)",
                 (name, uid))
        for (gi, gs), j in zip(rows, top):
            mism += int(gi) != int(ids[j])
            worst = max(worst, abs(gs - s[j]) / max(abs(s[j]), 1e-12))
        mism += abs(len(rows) - len(top))
        checked += 1
    return (f"recalculate => true vs numpy exact solve over the stored item factors, {checked} users: "
            f"{mism} of {checked * 10} ranked ids differ, max relative score difference {worst:.1e}")


def speed(args):
    conn = connect()
    cur = conn.cursor()
    q(cur, "CREATE EXTENSION IF NOT EXISTS media_reco")
    version = q(cur, "SELECT extversion FROM pg_extension WHERE extname = 'media_reco'")[0][0]
    sql_side = has_als(cur) and not args.numpy_only
    print(f"# ALS speed: media_reco {version}, numpy {np.__version__} "
          f"(OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']}), {os.cpu_count()} cores, "
          f"factors {args.factors}, lambda {args.regularization:g}, alpha {args.alpha:g}, "
          f"{args.iterations} iterations, load {open('/proc/loadavg').read().split()[:3]}")
    if not sql_side:
        print("media_reco.train_als / recommend_als not present (or --numpy-only): numpy side only")
    threads = [int(t) for t in args.threads.split(",")]
    summary = []
    for size in args.sizes.split(","):
        cfg = SIZES[size]
        table = f"als_{size}"
        q(cur, f"DROP TABLE IF EXISTS {table} CASCADE")
        t = time.time()
        q(cur, f"""CREATE TABLE {table} AS SELECT user_id, item_id, plays
                     FROM media_reco.synthetic_interactions(%s, %s, %s, 42)""",
          (cfg["users"], cfg["items"], cfg["rows"]))
        q(cur, f"CREATE INDEX ON {table} (user_id, item_id) INCLUDE (plays)")
        q(cur, f"VACUUM ANALYZE {table}")
        gen = time.time() - t
        u, i, _ = fetch_pairs(cur, table)
        data = ref.Interactions(u, i)
        del u, i
        print(f"\n## {size}: {cfg['rows']:,} rows, {data.nnz:,} distinct pairs, {data.shape[0]:,} users and "
              f"{data.shape[1]:,} items with rows (generated in {gen:.1f} s)")
        sys.stdout.flush()
        # Rounds interleave the two sides: for each cg_steps, media_reco's trainings then numpy's, so a
        # change in the machine's load hits both; the ratio is taken per round, and its median reported.
        per = {}                            # (cg, th) -> lists of media_reco s/it, numpy s/it, ratios
        for rnd in range(args.rounds):
            tag = f"round {rnd + 1}/{args.rounds}: " if args.rounds > 1 else ""
            for cg in args.cg_steps:
                mr = {}
                if sql_side:
                    for th in threads:
                        name = f"als_{size}_cg{cg}"
                        r = train_mr(name, table, als_options(args.factors, args.regularization, args.alpha,
                                                              args.iterations, cg, 42), th, mwm=args.mwm)
                        mr[th] = r
                        losses = [lo for _, lo, _ in r["iters"] if lo is not None]
                        print(f"{tag}media_reco cg_steps={cg} threads={th}: {r['sec_per_iter']:.3f} s/iteration "
                              f"({r['per_iter_source']}), {r['seconds']:.2f} s reported, {r['wall']:.2f} s wall; "
                              f"train_loss {r['train_loss']:.6g}; backend VmHWM {r['hwm_kb'] / 1024:.0f} MiB "
                              f"(before {r['base_hwm_kb'] / 1024:.0f} MiB), sampled peak RssAnon "
                              f"{r['anon_kb'] / 1024:.0f} MiB")
                        if losses:
                            print("    loss per iteration: " + ", ".join(f"{lo:.6g}" for lo in losses)
                                  + ("  (decreasing)" if all(b <= a for a, b in zip(losses, losses[1:]))
                                     else "  (NOT decreasing)"))
                        elif r["notices"]:
                            print("    notices: " + " | ".join(r["notices"][:3]))
                        sys.stdout.flush()
                label = "CG" if cg else "exact"
                iters = args.iterations if cg else min(args.iterations, args.exact_iterations)
                npr = numpy_run(data, args.factors, args.regularization, args.alpha, iters, cg)
                print(f"{tag}numpy {label} (cg_steps={cg}): {npr['sec_per_iter']:.3f} s/iteration (median of "
                      f"{iters}: " + ", ".join(f"{s:.2f}" for s in npr["seconds"])
                      + f"), loss {npr['loss_seconds']:.2f} s extra; "
                      f"peak RSS +{(npr['peak_kb'] or 0) / 1024:.0f} MiB; loss "
                      + ", ".join(f"{lo:.6g}" for lo in npr["loss"]))
                sys.stdout.flush()
                for th in threads:
                    r = mr.get(th)
                    d = per.setdefault((cg, th), dict(mr=[], np=[], ratio=[], hwm=None, anon=None, npk=0))
                    d["np"].append(npr["sec_per_iter"])
                    d["npk"] = max(d["npk"], (npr["peak_kb"] or 0) / 1024)
                    if r:
                        ratio = npr["sec_per_iter"] / r["sec_per_iter"]
                        with_loss = (npr["sec_per_iter"] + npr["loss_seconds"]) / r["sec_per_iter"]
                        print(f"{tag}ratio numpy {label} / media_reco (cg_steps={cg}, threads={th}) = "
                              f"{ratio:.2f}x ({with_loss:.2f}x counting numpy's loss, which media_reco "
                              f"computes every iteration)")
                        d["mr"].append(r["sec_per_iter"])
                        d["ratio"].append(ratio)
                        d["hwm"] = max(d["hwm"] or 0, r["hwm_kb"] / 1024)
                        d["anon"] = max(d["anon"] or 0, r["anon_kb"] / 1024)
                del npr
        for (cg, th), d in per.items():
            med = (lambda v: statistics.median(v) if v else None)
            if args.rounds > 1 and d["ratio"]:
                print(f"cg_steps={cg} threads={th}, {args.rounds} interleaved rounds: ratios "
                      + ", ".join(f"{x:.2f}x" for x in d["ratio"])
                      + f"; median {med(d['ratio']):.2f}x, min {min(d['ratio']):.2f}x")
            summary.append((size, cg, th, med(d["mr"]), med(d["np"]), med(d["ratio"]), d["hwm"], d["anon"],
                            d["npk"], len(d["np"])))
        # serving, from the first trained model (CG unless --cg-steps says otherwise)
        if sql_side:
            name = f"als_{size}_cg{args.cg_steps[0]}"
            users = history_users(cur, table, args.calls)
            if users:
                lat = run_latency(cur, name, users, args.calls)
                print(f"recommend_als(k = 10) over {data.shape[1]:,} items, {args.factors} factors, "
                      f"{len(users)} users with 90-110 history items, {args.calls} calls each, covering index: "
                      f"p50 {lat[0]['p50']:.2f} ms, p95 {lat[0]['p95']:.2f} ms; recalculate => true: "
                      f"p50 {lat[1]['p50']:.2f} ms, p95 {lat[1]['p95']:.2f} ms")
                print("    " + check_recalculate(cur, name, table, users, args.regularization, args.alpha))
            else:
                print("no user with 90-110 history items: latency skipped")
        del data
    print("\nsummary (s/iteration; ratio = numpy / media_reco; memory in MiB):")
    if args.rounds > 1:
        print(f"(medians over {args.rounds} interleaved rounds; the ratio is the median of the per-round ratios)")
    print("| size | cg_steps | threads | media_reco s/it | numpy s/it | ratio | backend VmHWM | RssAnon | numpy peak RSS |")
    print("|---|---|---|---|---|---|---|---|---|")
    for size, cg, th, t_mr, t_np, ratio, hwm, anon, npk, _ in summary:
        f2 = (lambda v, f="{:.3f}": "—" if v is None else f.format(v))
        print(f"| {size} | {cg} | {th} | {f2(t_mr)} | {t_np:.3f} | {f2(ratio, '{:.2f}x')} | "
              f"{f2(hwm, '{:.0f}')} | {f2(anon, '{:.0f}')} | {npk:.0f} |")


# ---------------------------------------------------------------- quality


def load_quality(cur, key):
    data_dir = ref.DATA
    if key == "ua":
        path = os.path.join(data_dir, "ml-100k")
        if not os.path.exists(os.path.join(path, "ua.base")):
            return None
        for t, f in (("ua_train", "ua.base"), ("ua_test", "ua.test")):
            q(cur, f"DROP TABLE IF EXISTS {t}")
            q(cur, f"CREATE TABLE {t} (user_id int, item_id int, rating int, ts bigint)")
            with open(os.path.join(path, f)) as fh:
                cur.copy_expert(f"COPY {t} FROM STDIN", fh)
        train, test = "ua_train", "ua_test"
    else:
        path = os.path.join(data_dir, "ml-latest-small", "ratings.csv")
        if not os.path.exists(path):
            return None
        q(cur, "DROP TABLE IF EXISTS mls_ratings, mls_train, mls_test")
        q(cur, "CREATE TABLE mls_ratings (user_id int, item_id int, rating real, ts bigint)")
        with open(path) as fh:
            cur.copy_expert("COPY mls_ratings FROM STDIN (FORMAT csv, HEADER)", fh)
        q(cur, """SELECT * FROM media_reco.split_interactions('mls_ratings', 'mls_train', 'mls_test',
                                                              'temporal', 0.2, time_col => 'ts')""")
        train, test = "mls_train", "mls_test"
    q(cur, f"CREATE INDEX ON {train} (user_id, item_id) INCLUDE (rating)")
    q(cur, f"CREATE INDEX ON {train} (item_id)")
    q(cur, f"VACUUM ANALYZE {train}")
    q(cur, f"ANALYZE {test}")
    return train, test


def evaluate_mr(cur, name, train, test):
    """media_reco.evaluate on the ALS model, else the metric functions over recommend_als."""
    try:
        got = dict(q(cur, "SELECT metric, value FROM media_reco.evaluate(%s, %s, 10)", (name, test)))
        return [got[m] for m in METRICS], "evaluate"
    except psycopg2.Error as e:
        how = f"recommend_als (evaluate: {str(e).splitlines()[0]})"
    vals = list(q(cur, f"""
      WITH seen AS (SELECT DISTINCT user_id::int8 AS u, item_id::int8 AS i FROM {train}),
      rel AS (SELECT t.user_id::int8 AS u, array_agg(DISTINCT t.item_id::int8) AS items FROM {test} t
              WHERE NOT EXISTS (SELECT 1 FROM seen s WHERE s.u = t.user_id AND s.i = t.item_id) GROUP BY 1),
      lists AS (SELECT r.items AS rel, coalesce((SELECT array_agg(x.item_id ORDER BY x.rank)
                  FROM media_reco.recommend_als(%s, r.u, 10) x), '{{}}') AS items FROM rel r)
      SELECT avg(media_reco.precision_at_k(items, rel, 10)), avg(media_reco.recall_at_k(items, rel, 10)),
             avg(media_reco.ndcg_at_k(items, rel, 10)), avg(media_reco.average_precision_at_k(items, rel, 10)),
             avg(media_reco.hit_at_k(items, rel, 10)), avg(media_reco.reciprocal_rank(items, rel)),
             (SELECT count(DISTINCT e) FROM lists, unnest(items) e)::float8
               / (SELECT count(DISTINCT item_id) FROM {train})
      FROM lists""", (name,))[0])
    return vals, how


def quality(args):
    conn = connect()
    cur = conn.cursor()
    q(cur, "DROP EXTENSION IF EXISTS media_reco CASCADE")
    q(cur, "CREATE EXTENSION media_reco")
    q(cur, "SET client_min_messages = warning")
    q(cur, "SET maintenance_work_mem = '1GB'")
    version = q(cur, "SELECT extversion FROM pg_extension WHERE extname = 'media_reco'")[0][0]
    sql_side = has_als(cur)
    print(f"# ALS quality: media_reco {version}, numpy {np.__version__}, {args.iterations} iterations, "
          f"cg_steps {args.cg_steps[0]}, seed 42")
    if not sql_side:
        print("media_reco.train_als not present: numpy side only")
    configs = [tuple(float(v) for v in c.split(":")) for c in args.configs.split(",") if c]
    configs = [(int(f), lam, a) for f, lam, a in configs] + [None]       # None: train_als's defaults
    n = 0
    for key in args.data.split(","):
        loaded = load_quality(cur, key)
        if loaded is None:
            print(f"\nSKIP {key}: its files are not under {ref.DATA} (set MEDIA_RECO_DATA)")
            continue
        train, test = loaded
        for weight in args.weights.split(","):
            wcol = None if weight == "binary" else "rating"
            tu, ti, tw = fetch_pairs(cur, train, wcol)
            eu, ei, _ = fetch_pairs(cur, test)
            data = ref.Interactions(tu, ti, tw)
            ev = ref.Evaluator(data, eu, ei)
            print(f"\n## {ref.TITLES[key]}, {weight}: {data.nnz:,} training pairs, {data.shape[0]:,} users, "
                  f"{data.shape[1]:,} items; {len(ev.users):,} test users (split read from the database)")
            print("| model | " + " | ".join(METRICS) + " | seconds |")
            print("|---|" + "---|" * (len(METRICS) + 1))
            print(ref.fmt_row("most popular unseen items (numpy)", ev.popularity()), flush=True)
            for cfg in configs:
                if cfg is None and not sql_side:
                    continue
                n += 1
                name = f"qals{n}"
                if cfg is None:
                    opts = dict(iterations=args.iterations, cg_steps=args.cg_steps[0], seed=42)
                    label = "defaults"
                else:
                    opts = als_options(cfg[0], cfg[1], cfg[2], args.iterations, args.cg_steps[0], 42)
                    label = f"f = {cfg[0]}, λ = {cfg[1]:g}, α = {cfg[2]:g}"
                if sql_side:
                    r = train_mr(name, train, opts, weight_col=wcol, mwm="1GB")
                    vals, how = evaluate_mr(cur, name, train, test)
                    print(ref.fmt_row(f"media_reco ALS {label} ({how})", dict(zip(METRICS, vals)),
                                      f"{r['wall']:.1f}"))
                    got_x, got_y = fetch_factors(cur, "user", name), fetch_factors(cur, "item", name)
                    if got_x is not None and got_y is not None:
                        # numpy's evaluation of media_reco's own factors: must match evaluate up to ties
                        X = np.zeros((data.shape[0], got_x[1].shape[1]), dtype=np.float32)
                        Y = np.zeros((data.shape[1], got_y[1].shape[1]), dtype=np.float32)
                        X[np.searchsorted(data.user_ids, got_x[0])] = got_x[1]
                        Y[np.searchsorted(data.item_ids, got_y[0])] = got_y[1]
                        print(ref.fmt_row("numpy evaluation of media_reco's factors", ev.als(X, Y)))
                if cfg is None:
                    continue
                t0 = time.perf_counter()
                X, Y, _ = ref.train(data, cfg[0], cfg[1], cfg[2], args.iterations, args.cg_steps[0], 42,
                                    with_loss=False)
                print(ref.fmt_row(f"numpy ALS {label}", ev.als(X, Y), f"{time.perf_counter() - t0:.1f}"), flush=True)
    conn.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quality", action="store_true", help="MovieLens quality instead of speed")
    ap.add_argument("--sizes", default="1m,10m")
    ap.add_argument("--threads", default="2")
    ap.add_argument("--factors", type=int, default=64)
    ap.add_argument("--regularization", type=float, default=20.0)
    ap.add_argument("--alpha", type=float, default=1.0)
    ap.add_argument("--iterations", type=int, default=None,
                    help="speed: 5 (per-iteration time is what is compared); quality: 15")
    ap.add_argument("--exact-iterations", type=int, default=3, help="numpy exact variant: at most this many")
    ap.add_argument("--cg-steps", default="3,0", help="speed: each is timed; quality: the first is used")
    ap.add_argument("--calls", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=1,
                    help="speed: repeat each media_reco / numpy pair this many times, interleaved; median ratio")
    ap.add_argument("--mwm", default="8GB", help="maintenance_work_mem for train_als (speed)")
    ap.add_argument("--numpy-only", action="store_true")
    ap.add_argument("--data", default="ua,mls")
    ap.add_argument("--weights", default="binary,rating")
    ap.add_argument("--configs", default="64:20:1,32:20:1,128:20:1,64:1:10",
                    help="quality: factors:lambda:alpha, comma-separated")
    args = ap.parse_args()
    args.cg_steps = [int(c) for c in args.cg_steps.split(",")]
    if args.iterations is None:
        args.iterations = 15 if args.quality else 5
    return quality(args) if args.quality else speed(args)


if __name__ == "__main__":
    sys.exit(main())
