#!/usr/bin/env bash
# media_reco on a Citus coordinator + 2 workers on this machine against the
# same rows in a local table, in one run (test/bench/citus_bench.pl): batch
# predict over a distributed table (rows/s, per worker) and refresh_neighbors
# from a distributed source.  Needs Citus (bash test/citus/build.sh SRC).
#   bash test/bench/citus.sh [--predict-rows N] [--refresh-rows N[,N...]] [--metrics M[,M...]]
# Defaults 2,000,000 and 1,000,000: about 3 minutes on 2 cores.  The README's
# refresh figures: --predict-rows 0 --refresh-rows 1000000,10000000,2000000:10000:2000
# (about 6 minutes; a size ROWS:USERS:ITEMS sets the users and items);
# --predict-rows 0 skips the prediction and latency parts.  --metrics (default cosine, over the
# unweighted rows) adds refreshes of other metrics weighted by plays, e.g. cosine,bm25,adjusted_cosine.
set -euo pipefail
predict_rows=2000000 refresh_rows=1000000 metrics=cosine
while [ $# -gt 0 ]; do
    case "$1" in
        --predict-rows) predict_rows=$2; shift 2 ;;
        --refresh-rows) refresh_rows=$2; shift 2 ;;
        --metrics) metrics=$2; shift 2 ;;
        *) echo "usage: $0 [--predict-rows N] [--refresh-rows N[,N...]] [--metrics M[,M...]]" >&2; exit 2 ;;
    esac
done
source "$(dirname "${BASH_SOURCE[0]}")/../setup.sh"
if [ ! -f "$("$PG_CONFIG" --pkglibdir)/citus.so" ]; then
    echo "Citus is not installed; build it with: bash test/citus/build.sh /path/to/citus" >&2
    exit 1
fi
dir=$(mktemp -d /tmp/media_reco_citus_bench.XXXXXX)
trap '[ "${KEEP:-}" ] || rm -rf "$dir"' EXIT
cp "$MR_ROOT/test/bench/citus_bench.pl" "$dir/" && cp -r "$MR_ROOT/test/t/lib" "$dir/"
run_as=()
if [ "$(id -u)" -eq 0 ]; then chown -R postgres "$dir"; run_as=(runuser -u postgres --); fi
cd "$dir" && "${run_as[@]}" env PATH="$MR_PGBIN:$PATH" TESTDIR="$dir" \
    PG_REGRESS="$MR_PGXS/src/test/regress/pg_regress" \
    BENCH_PREDICT_ROWS="$predict_rows" BENCH_REFRESH_ROWS="$refresh_rows" BENCH_REFRESH_METRICS="$metrics" \
    prove -v -I "$MR_PGXS/src/test/perl" citus_bench.pl
