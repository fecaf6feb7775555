#!/usr/bin/env bash
# recommend_all vs LATERAL recommend() on 50k users, in a throw-away cluster.
# Usage: test/bench/recommend_all.sh [--users N --items N --rows N --k K]; about 2 minutes.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../setup.sh"
mr_install_packages python3-psycopg2 postgresql-client-15
pg_virtualenv -v 15 -o shared_buffers=1GB -o maintenance_work_mem=1GB \
    /usr/bin/python3 "$MR_ROOT/test/bench/bench_recommend_all.py" "$@"
