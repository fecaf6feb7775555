#!/usr/bin/env bash
# RP3beta refresh at 1M rows (bench_item_similarity.py's data) against the same computation in
# scipy.sparse (single thread) and against media_reco's cosine, in a throw-away cluster.
# Usage: test/bench/rp3beta.sh [--alpha 1.0] [--beta 0.5] [--reps 2].  About 3 minutes on 2 cores.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../setup.sh"
mr_install_packages python3-scipy python3-numpy python3-psycopg2 postgresql-client-15
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
pg_virtualenv -v 15 -o shared_buffers=1GB -o maintenance_work_mem=1GB -o synchronous_commit=off \
    /usr/bin/python3 "$MR_ROOT/test/bench/bench_rp3beta.py" "$@"
