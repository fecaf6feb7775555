#!/usr/bin/env bash
# Random-forest benchmark, side by side with scikit-learn and ranger, in a
# throw-away cluster.  Usage: test/bench/forest.sh [--quick] [--only adult,classification,regression,speed]
# Takes about 10-20 minutes on 2 cores (--quick: a few minutes).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../setup.sh"
mr_install_packages python3-sklearn python3-numpy python3-psycopg2 r-cran-ranger postgresql-client-15
export MEDIA_RECO_DATA=${MEDIA_RECO_DATA:-$(cd "$MR_ROOT/.." && pwd)/shared/data}
pg_virtualenv -v 15 -o shared_buffers=1GB -o maintenance_work_mem=4GB -o max_wal_size=8GB \
    -o synchronous_commit=off \
    /usr/bin/python3 "$MR_ROOT/test/bench/bench_forest.py" "$@"
