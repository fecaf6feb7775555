#!/usr/bin/env bash
# Recommendation quality on MovieLens 100K (ua split) for every similarity metric and user-based CF,
# in a throw-away cluster.  Needs ../shared/data/ml-100k (skips otherwise).  About 5 minutes.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../setup.sh"
mr_install_packages python3-psycopg2 postgresql-client-15
export MEDIA_RECO_DATA=${MEDIA_RECO_DATA:-$(cd "$MR_ROOT/.." && pwd)/shared/data}
pg_virtualenv -v 15 -o maintenance_work_mem=512MB \
    /usr/bin/python3 "$MR_ROOT/test/bench/bench_movielens.py" "$@"
