#!/usr/bin/env bash
# EASE refresh (table to filled neighbour table) against numpy's np.linalg.inv + division + top-k,
# peak memory against the one dense matrix, and recommend() latency on an EASE k = 200 recommender,
# in a throw-away cluster.  Usage: test/bench/ease.sh [--sizes 5k,10k] [--ks 200,50] [--threads 2,1]
# --serving-only: only the recommend() latency (a few minutes).
# numpy uses Debian's threaded OpenBLAS with OPENBLAS_NUM_THREADS (default 2).  About 15 minutes on 2 cores.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../setup.sh"
mr_install_packages python3-scipy python3-numpy python3-psycopg2 postgresql-client-15
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-2}
if [[ " $* " == *" --serving-only "* ]]; then
    # serving on a cluster with default settings: synchronous_commit = off, there for the refreshes'
    # sake, made recommend() calls about twice as slow on this machine
    pg_virtualenv -v 15 -o shared_buffers=512MB /usr/bin/python3 "$MR_ROOT/test/bench/bench_ease.py" "$@"
else
    pg_virtualenv -v 15 -o shared_buffers=512MB -o maintenance_work_mem=4GB -o max_wal_size=8GB \
        -o checkpoint_timeout=30min -o synchronous_commit=off \
        /usr/bin/python3 "$MR_ROOT/test/bench/bench_ease.py" "$@"
fi
