#!/usr/bin/env bash
# Implicit ALS (train_als, recommend_als) against numpy/scipy (test/bench/als_reference.py: CG as the
# `implicit` library does it, and the exact solve) on generated data, seconds per iteration, peak memory and
# serving latency, in a throw-away cluster.  Usage: test/bench/als.sh [--sizes 1m,10m] [--threads 2,1]
# [--iterations 5] [--cg-steps 3,0] [--rounds 1]; test/bench/als.sh --quality [--data ua,mls] [--configs 64:10:1,...]
# for MovieLens 100K ua and ml-latest-small (needs ../shared/data).  numpy uses Debian's threaded OpenBLAS
# with OPENBLAS_NUM_THREADS (default 2).  On 2 cores: 1m about 3 minutes; 10m at --iterations 3 about 8
# (numpy CG 11 s and exact 38 s an iteration) and 2 GB of RAM; --quality about 2 minutes.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../setup.sh"
mr_install_packages python3-scipy python3-numpy python3-psycopg2 postgresql-client-15
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-2}
export MEDIA_RECO_DATA=${MEDIA_RECO_DATA:-$(cd "$MR_ROOT/.." && pwd)/shared/data}
pg_virtualenv -v 15 -o shared_buffers=1GB -o maintenance_work_mem=8GB -o max_wal_size=8GB \
    -o checkpoint_timeout=30min -o synchronous_commit=off \
    /usr/bin/python3 "$MR_ROOT/test/bench/bench_als.py" "$@"
