#!/usr/bin/env bash
# Item-to-item benchmark, side by side with scipy and plain SQL, in a
# throw-away cluster.  Usage: test/bench/run.sh [--sizes 1m,10m] [--no-sql]
# Takes about 15-30 minutes on 2 cores with both sizes and the SQL baseline.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../setup.sh"
mr_install_packages python3-scipy python3-numpy python3-psycopg2 postgresql-client-15
pg_virtualenv -v 15 -o shared_buffers=2GB -o maintenance_work_mem=4GB -o max_wal_size=8GB \
    -o checkpoint_timeout=30min -o synchronous_commit=off \
    /usr/bin/python3 "$MR_ROOT/test/bench/bench_item_similarity.py" "$@"
