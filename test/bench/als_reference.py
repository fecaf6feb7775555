#!/usr/bin/python3
"""Implicit ALS (Hu, Koren, Volinsky 2008) in numpy/scipy: the reference that
media_reco.train_als is timed and checked against (test/bench/bench_als.py),
and a small quality grid on MovieLens 100K ua and ml-latest-small.

Definitions (those of issue 11):
  * w_ui is the weight of a stored (user, item) pair (1 per row without a
    weight column, repeated rows summed), p_ui = 1 for stored pairs, 0 else;
  * confidence c_ui = 1 + alpha * w_ui (1 for pairs not stored);
  * loss = sum over ALL (u, i) of c_ui (p_ui - x_u . y_i)^2
           + lambda (|X|_F^2 + |Y|_F^2), lambda not scaled by any count;
  * one iteration = solve every user against the item factors, then every
    item against the new user factors (normal equations per row:
    (Y'Y + lambda I + Y' (C_u - I) Y) x_u = Y' C_u p_u).

Two solvers, both float32, both vectorised across all rows of one side at once:
  * cg (default, cg_steps = 3): conjugate gradient warm-started from the
    current factors, as the `implicit` library does (Takacs et al. 2011):
    the dense part P (Y'Y + lambda I) is one GEMM over all rows, the sparse
    correction sum_i (c_ui - 1)(y_i . p_u) y_i gathers the stored pairs'
    rows and scatters them back with a CSR x dense product;
  * exact (cg_steps = 0): per row the full normal equations, built for a
    block of rows of similar history length as a batched GEMM over padded,
    sqrt(c - 1)-scaled gathered rows, and solved with batched
    np.linalg.solve (LAPACK gesv).
Work is cut into row ranges of at most `chunk_nnz` stored pairs, which only
bounds memory: rows of one side are independent.

The loss is computed in O(nnz f + (n + m) f^2):
  sum_all (x.y)^2 = <X'X, Y'Y>, plus over stored pairs c (1 - s)^2 - s^2.

Evaluation: the protocol of media_reco.evaluate (src/evaluate.c) and
test/bench/bench_quality.py: per test user the relevant items are its test
items not seen in training (users with none are skipped; items unknown to
training still count as relevant), the top 10 over the training items with
the seen ones excluded, ties by the smaller item id; precision@10, recall@10,
ndcg@10, map@10 (divided by min(10, |relevant|)), hit_rate@10, mrr (of the
top-10 list), coverage (distinct recommended items / distinct training
items); popularity = most users first, then the smaller id, seen excluded.

`--self-check` compares the loss with its dense formula, the exact solver
and CG run to f steps with a float64 solve per row, and checks that the loss
decreases every iteration.  Run directly for the grid: /usr/bin/python3 test/bench/als_reference.py
[--data ua,mls] [--factors 32,64,128] [--lambdas ...] [--alphas ...]
[--weights binary,rating] [--iterations 15] [--cg-steps 3].
Needs ../shared/data (MEDIA_RECO_DATA); skips a missing data set.
"""
import argparse
import os
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "2")
os.environ.setdefault("OMP_NUM_THREADS", os.environ["OPENBLAS_NUM_THREADS"])

import numpy as np
import scipy.sparse as sp

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.environ.get("MEDIA_RECO_DATA", os.path.join(HERE, "..", "..", "..", "shared", "data"))
METRICS = ["precision@10", "recall@10", "ndcg@10", "map@10", "hit_rate@10", "mrr", "coverage"]
DT = np.float32


# ---------------------------------------------------------------- data


class Interactions:
    """Users x items weights as CSR (both orientations), ids ascending."""

    def __init__(self, users, items, weights=None):
        users = np.asarray(users, dtype=np.int64)
        items = np.asarray(items, dtype=np.int64)
        w = np.ones(len(users), dtype=np.float64) if weights is None else np.asarray(weights, dtype=np.float64)
        self.user_ids, ui = np.unique(users, return_inverse=True)
        self.item_ids, ii = np.unique(items, return_inverse=True)
        W = sp.csr_matrix((w, (ui, ii)), shape=(len(self.user_ids), len(self.item_ids)))
        W.sum_duplicates()          # repeated rows: weights summed
        W.sort_indices()
        if W.nnz and W.data.min() <= 0:
            raise ValueError("a summed weight is <= 0")
        self.W = W.astype(DT)
        self.WT = self.W.T.tocsr()
        self.WT.sort_indices()

    @property
    def shape(self):
        return self.W.shape

    @property
    def nnz(self):
        return self.W.nnz


def _chunks(indptr, chunk_nnz):
    """Row ranges [s, e) with at most chunk_nnz stored pairs (at least one row)."""
    n = len(indptr) - 1
    s = 0
    while s < n:
        e = int(np.searchsorted(indptr, indptr[s] + chunk_nnz, side="right")) - 1
        e = min(max(e, s + 1), n)
        yield s, e
        s = e


def _rowdot(A, B):
    return np.einsum("ij,ij->i", A, B)


# ---------------------------------------------------------------- solvers


def solve_cg(W, X, Y, alpha, lam, cg_steps=3, chunk_nnz=1 << 16):
    """X <- cg_steps CG steps from X on every row's normal equations (in place)."""
    f = Y.shape[1]
    A0 = (Y.T @ Y).astype(DT) + DT(lam) * np.eye(f, dtype=DT)   # Y'Y + lambda I
    indptr, indices, data = W.indptr, W.indices, W.data
    # gather buffers reused by every chunk and step (fresh arrays cost page faults)
    cap = max(1, min(chunk_nnz, W.nnz) if W.nnz else 1)
    cap = max(cap, int(np.diff(indptr).max()) if W.shape[0] else 1)
    Yg_buf = np.empty((cap, f), dtype=DT)
    G_buf = np.empty((cap, f), dtype=DT)
    for s, e in _chunks(indptr, chunk_nnz):
        lo, hi = indptr[s], indptr[e]
        nu, m = e - s, hi - lo
        lp = (indptr[s:e + 1] - lo).astype(np.int64)
        rows = np.repeat(np.arange(nu), np.diff(lp))
        Yg = np.take(Y, indices[lo:hi], axis=0, out=Yg_buf[:m], mode="clip")   # reused by every step
        G = G_buf[:m]
        cm1 = DT(alpha) * data[lo:hi]             # c - 1
        S = sp.csr_matrix((np.empty(m, dtype=DT), np.arange(m, dtype=np.int32), lp), shape=(nu, m))
        x = X[s:e]
        # r = b - A x = sum_i (c - (c - 1) y_i.x) y_i - (Y'Y + lambda I) x
        np.take(x, rows, axis=0, out=G, mode="clip")
        S.data[:] = (1 + cm1) - cm1 * _rowdot(Yg, G)
        r = S @ Yg - x @ A0
        p = r.copy()
        rs = _rowdot(r, r)
        for _ in range(cg_steps):
            active = rs > 1e-20
            if not active.any():
                break
            np.take(p, rows, axis=0, out=G, mode="clip")
            S.data[:] = cm1 * _rowdot(Yg, G)
            Ap = p @ A0 + S @ Yg
            pAp = _rowdot(p, Ap)
            a = np.where(active & (pAp > 0), rs / np.where(pAp > 0, pAp, 1), 0).astype(DT)
            x += a[:, None] * p
            r -= a[:, None] * Ap
            rsn = _rowdot(r, r)
            beta = np.where(active, rsn / np.where(rs > 0, rs, 1), 0).astype(DT)
            p = r + beta[:, None] * p
            rs = rsn
        X[s:e] = x


def solve_exact(W, X, Y, alpha, lam, block_floats=1 << 23):
    """X <- exact solution of every row's normal equations (batched gesv)."""
    f = Y.shape[1]
    n = W.shape[0]
    A0 = (Y.T @ Y).astype(DT) + DT(lam) * np.eye(f, dtype=DT)
    C = W.copy()
    C.data = 1 + DT(alpha) * C.data
    B = np.asarray(C @ Y, dtype=DT)               # Y' C_u p_u, p = 1 on stored pairs
    indptr, indices, data = W.indptr, W.indices, W.data
    lens = np.diff(indptr)
    order = np.argsort(lens, kind="stable")       # similar lengths share a padded block
    empty = lens[order] == 0
    X[order[empty]] = 0                           # no history: A0 x = 0
    pos = int(empty.sum())
    while pos < n:
        # lengths ascend along `order`, so a block's longest row is its last: take as many rows
        # as fit block_floats at the first row's length, then halve until the last row fits too
        end = min(n, pos + max(1, block_floats // (int(lens[order[pos]]) * f)))
        while end > pos + 1 and (end - pos) * int(lens[order[end - 1]]) * f > block_floats:
            end = pos + max(1, (end - pos) // 2)
        blk = order[pos:end]
        L = int(lens[blk].max())
        nb = len(blk)
        starts = indptr[blk]
        cnt = lens[blk]
        bi = np.repeat(np.arange(nb), cnt)
        off = np.arange(int(cnt.sum())) - np.repeat(np.cumsum(cnt) - cnt, cnt)
        j = np.repeat(starts, cnt) + off
        G = np.zeros((nb, L, f), dtype=DT)
        G[bi, off] = Y[indices[j]] * np.sqrt(DT(alpha) * data[j])[:, None]
        A = np.matmul(G.transpose(0, 2, 1), G)
        A += A0
        X[blk] = np.linalg.solve(A, B[blk][:, :, None])[:, :, 0]
        pos = end


def recalculate(item_idx, weights, Y, alpha, lam):
    """x_u solved exactly (float64) from one history against fixed item factors:
    what recommend_als(..., recalculate => true) must return."""
    Y = np.asarray(Y, dtype=np.float64)
    f = Y.shape[1]
    Yh = Y[item_idx]
    c = 1 + alpha * np.asarray(weights, dtype=np.float64)
    A = Y.T @ Y + lam * np.eye(f) + Yh.T @ ((c - 1)[:, None] * Yh)
    return np.linalg.solve(A, Yh.T @ c)


def als_loss(W, X, Y, alpha, lam, chunk_nnz=1 << 16):
    """sum over all (u, i) of c (p - x.y)^2 + lambda (|X|^2 + |Y|^2), in float64."""
    X64 = X.astype(np.float64)
    Y64 = Y.astype(np.float64)
    total = float(np.sum((X64.T @ X64) * (Y64.T @ Y64)))
    indptr, indices, data = W.indptr, W.indices, W.data
    for s, e in _chunks(indptr, chunk_nnz):
        lo, hi = indptr[s], indptr[e]
        rows = np.repeat(np.arange(s, e), np.diff(indptr[s:e + 1]))
        sc = _rowdot(X64[rows], Y64[indices[lo:hi]])
        c = 1 + alpha * data[lo:hi].astype(np.float64)
        total += float(np.sum(c * (1 - sc) ** 2 - sc * sc))
    return total + lam * (float(np.sum(X64 * X64)) + float(np.sum(Y64 * Y64)))


def train(data, factors=64, regularization=1.0, alpha=1.0, iterations=15, cg_steps=3, seed=42,
          with_loss=True, verbose=False, X=None, Y=None):
    """Alternate users and items; returns X, Y and one record per iteration:
    dict(iteration, seconds (the two solves), loss, loss_seconds)."""
    n, m = data.shape
    rng = np.random.default_rng(seed)
    if X is None:
        X = (rng.random((n, factors), dtype=DT) * DT(0.01))
    if Y is None:
        Y = (rng.random((m, factors), dtype=DT) * DT(0.01))
    X = np.ascontiguousarray(X, dtype=DT)
    Y = np.ascontiguousarray(Y, dtype=DT)
    hist = []
    for it in range(1, iterations + 1):
        t0 = time.perf_counter()
        if cg_steps > 0:
            solve_cg(data.W, X, Y, alpha, regularization, cg_steps)
            solve_cg(data.WT, Y, X, alpha, regularization, cg_steps)
        else:
            solve_exact(data.W, X, Y, alpha, regularization)
            solve_exact(data.WT, Y, X, alpha, regularization)
        secs = time.perf_counter() - t0
        rec = dict(iteration=it, seconds=secs, loss=None, loss_seconds=0.0)
        if with_loss:
            t1 = time.perf_counter()
            rec["loss"] = als_loss(data.W, X, Y, alpha, regularization)
            rec["loss_seconds"] = time.perf_counter() - t1
        hist.append(rec)
        if verbose:
            print(f"  iteration {it}: {secs:.3f} s" + (f", loss {rec['loss']:.6g}" if with_loss else ""), flush=True)
    return X, Y, hist


# ---------------------------------------------------------------- evaluation


def _topk_rows(S, k):
    """Per row the k largest scores' column indices, ties by the smaller column."""
    k = min(k, S.shape[1])
    part = np.argpartition(-S, k - 1, axis=1)[:, :k]
    # the k-th value may be tied with columns outside `part`: take every column >= it
    kth = np.take_along_axis(S, part, axis=1).min(axis=1)
    out = np.empty((S.shape[0], k), dtype=np.int64)
    for r in range(S.shape[0]):
        cand = np.nonzero(S[r] >= kth[r])[0]
        o = np.lexsort((cand, -S[r, cand]))[:k]
        out[r] = cand[o]
    return out


def rank_metrics(lists, rels, n_train_items, k=10):
    """The metrics of media_reco's metric functions, averaged over users.

    lists: per user a list of recommended item ids (ranked); rels: per user
    the set of relevant ids (non-empty)."""
    disc = 1.0 / np.log2(np.arange(2, k + 2))
    acc = np.zeros(6)
    seen_items = set()
    for rec, rel in zip(lists, rels):
        rec = list(rec)[:k]
        seen_items.update(rec)
        hits = np.array([x in rel for x in rec], dtype=bool)
        h = int(hits.sum())
        dcg = float(disc[:len(rec)][hits].sum())
        idcg = float(disc[:min(k, len(rel))].sum())
        ap = float(np.sum(np.cumsum(hits)[hits] / (np.nonzero(hits)[0] + 1))) / min(k, len(rel))
        rr = 1.0 / (int(np.argmax(hits)) + 1) if h else 0.0
        acc += [h / k, h / len(rel), dcg / idcg, ap, 1.0 if h else 0.0, rr]
    vals = list(acc / len(rels))
    vals.append(len(seen_items) / n_train_items)
    return dict(zip(METRICS, vals))


class Evaluator:
    """Relevant sets and seen items of a train/test split, in raw ids."""

    def __init__(self, data, test_users, test_items, k=10):
        self.data, self.k = data, k
        W = data.W
        uidx = {int(u): j for j, u in enumerate(data.user_ids)}
        test = {}
        for u, i in zip(np.asarray(test_users, dtype=np.int64), np.asarray(test_items, dtype=np.int64)):
            test.setdefault(int(u), set()).add(int(i))
        self.users, self.rows, self.rels = [], [], []
        for u in sorted(test):
            r = uidx.get(u)
            seen = set() if r is None else set(data.item_ids[W.indices[W.indptr[r]:W.indptr[r + 1]]].tolist())
            rel = test[u] - seen
            if rel:
                self.users.append(u)
                self.rows.append(-1 if r is None else r)
                self.rels.append(rel)
        self.rows = np.array(self.rows)

    def lists_from_scores(self, score_fn, block=2048):
        """score_fn(row indices) -> dense scores over the training items."""
        W, ids, out = self.data.W, self.data.item_ids, []
        known = self.rows >= 0
        for s in range(0, len(self.rows), block):
            rr = self.rows[s:s + block]
            rr_ok = np.where(rr >= 0, rr, 0)
            S = np.array(score_fn(rr_ok), dtype=np.float64)
            S[~known[s:s + block]] = 0.0           # users absent from training: no factors
            sub = W[rr_ok]
            r_i, c_i = sub.nonzero()
            ok = known[s:s + block][r_i]
            S[r_i[ok], c_i[ok]] = -np.inf           # seen items excluded
            top = _topk_rows(S, self.k)
            for row, t in zip(S, top):
                out.append([int(ids[j]) for j in t if np.isfinite(row[j])])
        return out

    def score(self, score_fn):
        return rank_metrics(self.lists_from_scores(score_fn), self.rels, self.data.shape[1], self.k)

    def popularity(self):
        W = self.data.W
        pop = np.diff(W.tocsc().indptr)         # users per item (pairs are distinct)
        return self.score(lambda rows: np.broadcast_to(pop.astype(np.float64), (len(rows), len(pop))))

    def als(self, X, Y):
        X64, Y64 = X.astype(np.float64), Y.astype(np.float64)
        return self.score(lambda rows: X64[rows] @ Y64.T)


# ---------------------------------------------------------------- data sets


def load_ua():
    path = os.path.join(DATA, "ml-100k")
    if not os.path.exists(os.path.join(path, "ua.base")):
        return None
    tr = np.loadtxt(os.path.join(path, "ua.base"), dtype=np.int64)
    te = np.loadtxt(os.path.join(path, "ua.test"), dtype=np.int64)
    return dict(train=(tr[:, 0], tr[:, 1], tr[:, 2].astype(np.float64)), test=(te[:, 0], te[:, 1]))


def temporal_split(u, i, r, ts, frac_tenths=2):
    """Each user's latest floor(n * 0.2) rows to test (n * 2 // 10, exact).
    media_reco.split_interactions breaks timestamp ties by a seeded row hash,
    which numpy cannot reproduce; here ties go by the larger item id, so a
    few boundary rows may differ (bench_als.py --quality uses the database's
    own split for both sides)."""
    o = np.lexsort((-i, -ts, u))                  # per user: latest first, then larger item id
    u, i, r, ts = u[o], i[o], r[o], ts[o]
    starts = np.r_[0, np.nonzero(np.diff(u))[0] + 1]
    counts = np.diff(np.r_[starts, len(u)])
    rank = np.arange(len(u)) - np.repeat(starts, counts)
    is_test = rank < np.repeat(counts * frac_tenths // 10, counts)
    return (u[~is_test], i[~is_test], r[~is_test]), (u[is_test], i[is_test])


def load_mls():
    path = os.path.join(DATA, "ml-latest-small", "ratings.csv")
    if not os.path.exists(path):
        return None
    a = np.loadtxt(path, delimiter=",", skiprows=1)
    tr, te = temporal_split(a[:, 0].astype(np.int64), a[:, 1].astype(np.int64), a[:, 2], a[:, 3].astype(np.int64))
    return dict(train=tr, test=te)


LOADERS = {"ua": load_ua, "mls": load_mls}
TITLES = {"ua": "MovieLens 100K ua.base → ua.test", "mls": "ml-latest-small, temporal 20 % split"}


# ---------------------------------------------------------------- grid


def fmt_row(label, vals, extra=""):
    return f"| {label} | " + " | ".join(f"{vals[m]:.4f}" for m in METRICS) + f" | {extra} |"


def self_check():
    """The solvers and the loss against dense formulas on a small random problem."""
    rng = np.random.default_rng(1)
    u, i = rng.integers(0, 300, 3000), rng.integers(0, 120, 3000)
    d = Interactions(u, i, rng.integers(1, 5, 3000).astype(float))
    f, lam, alpha = 8, 0.5, 2.0
    X = rng.random((d.shape[0], f)).astype(DT)
    Y = rng.random((d.shape[1], f)).astype(DT)
    Wd = d.W.toarray().astype(np.float64)
    X64, Y64 = X.astype(np.float64), Y.astype(np.float64)
    dense = np.sum((1 + alpha * Wd) * ((Wd > 0) - X64 @ Y64.T) ** 2) + lam * (np.sum(X64 ** 2) + np.sum(Y64 ** 2))
    got = als_loss(d.W, X, Y, alpha, lam)
    ok = abs(got - dense) <= 1e-9 * dense
    print(f"loss {got:.10g} vs dense {dense:.10g}: {'ok' if ok else 'FAIL'}")
    exact = np.array([recalculate(d.W.indices[d.W.indptr[r]:d.W.indptr[r + 1]],
                                  d.W.data[d.W.indptr[r]:d.W.indptr[r + 1]], Y, alpha, lam)
                      for r in range(d.shape[0])])
    Xe = X.copy()
    solve_exact(d.W, Xe, Y, alpha, lam, block_floats=500)     # tiny blocks: the blocking is exercised
    Xc = X.copy()
    solve_cg(d.W, Xc, Y, alpha, lam, cg_steps=f, chunk_nnz=400)  # f steps: CG reaches the solution
    for label, got_x, tol in (("exact solve", Xe, 1e-4), ("CG, f steps", Xc, 5e-3)):
        err = float(np.abs(got_x - exact).max() / np.abs(exact).max())
        ok &= err < tol
        print(f"{label} vs per-row float64 solve: max relative difference {err:.1e} ({'ok' if err < tol else 'FAIL'})")
    for cg in (3, 0):
        losses = [h["loss"] for h in train(d, f, lam, alpha, 6, cg, seed=3)[2]]
        dec = all(b < a for a, b in zip(losses, losses[1:]))
        ok &= dec
        print(f"cg_steps {cg}: loss per iteration " + ", ".join(f"{v:.6g}" for v in losses)
              + (" (decreasing)" if dec else " (NOT decreasing: FAIL)"))
    return 0 if ok else 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--self-check", action="store_true", help="check the solvers and the loss, then exit")
    ap.add_argument("--data", default="ua,mls")
    ap.add_argument("--factors", default="32,64,128")
    ap.add_argument("--lambdas", default="0.1,1,10,50,100")
    ap.add_argument("--alphas", default="1,3,10,40")
    ap.add_argument("--weights", default="binary,rating")
    ap.add_argument("--iterations", type=int, default=15)
    ap.add_argument("--cg-steps", type=int, default=3)
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args()
    if args.self_check:
        return self_check()
    factors = [int(x) for x in args.factors.split(",")]
    lambdas = [float(x) for x in args.lambdas.split(",")]
    alphas = [float(x) for x in args.alphas.split(",")]
    print(f"# implicit ALS grid (numpy {np.__version__}, OPENBLAS_NUM_THREADS="
          f"{os.environ['OPENBLAS_NUM_THREADS']}): iterations {args.iterations}, cg_steps {args.cg_steps}, "
          f"seed {args.seed}")
    for key in args.data.split(","):
        d = LOADERS[key]()
        if d is None:
            print(f"\nSKIP {key}: its files are not under {DATA} (set MEDIA_RECO_DATA)")
            continue
        tu, ti, tr = d["train"]
        for wname in args.weights.split(","):
            data = Interactions(tu, ti, None if wname == "binary" else tr)
            ev = Evaluator(data, *d["test"])
            print(f"\n## {TITLES[key]}, {wname}: train {len(tu):,} rows, {data.shape[0]:,} users, "
                  f"{data.shape[1]:,} items; {len(ev.users):,} test users")
            print("| model | " + " | ".join(METRICS) + " | seconds |")
            print("|---|" + "---|" * (len(METRICS) + 1))
            print(fmt_row("most popular unseen items", ev.popularity()), flush=True)
            results = []
            for f in factors:
                for lam in lambdas:
                    for a in alphas:
                        t0 = time.perf_counter()
                        X, Y, hist = train(data, f, lam, a, args.iterations, args.cg_steps, args.seed,
                                           with_loss=False)
                        secs = time.perf_counter() - t0
                        m = ev.als(X, Y)
                        results.append(((f, lam, a), m))
                        print(fmt_row(f"ALS f = {f}, λ = {lam:g}, α = {a:g}", m, f"{secs:.1f}"), flush=True)
            best = max(results, key=lambda e: (e[1]["ndcg@10"], e[1]["precision@10"]))
            print(f"best by ndcg@10 ({key}, {wname}): f = {best[0][0]}, λ = {best[0][1]:g}, α = {best[0][2]:g}: "
                  f"p@10 {best[1]['precision@10']:.4f}, ndcg@10 {best[1]['ndcg@10']:.4f}")


if __name__ == "__main__":
    sys.exit(main())
