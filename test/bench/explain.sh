#!/usr/bin/env bash
# Explanation speed (explain_prediction: TreeSHAP for forests, integrated gradients for a
# network) on UCI Adult, rows/s on one core, in a throw-away cluster.  Usage:
# test/bench/explain.sh [--rows N].  Needs ../shared/data/uci-adult (skips with a message
# when absent; nothing is copied into the repository).  About 3 minutes on 2 cores.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../setup.sh"
mr_install_packages python3-psycopg2 postgresql-client-15
export MEDIA_RECO_DATA=${MEDIA_RECO_DATA:-$(cd "$MR_ROOT/.." && pwd)/shared/data}
if [ ! -f "$MEDIA_RECO_DATA/uci-adult/adult.data" ]; then
    echo "SKIP explain benchmark: $MEDIA_RECO_DATA/uci-adult/adult.data not found (set MEDIA_RECO_DATA)"
    exit 0
fi
pg_virtualenv -v 15 -o shared_buffers=512MB -o maintenance_work_mem=2GB -o max_parallel_workers_per_gather=0 \
    /usr/bin/python3 "$MR_ROOT/test/bench/bench_explain.py" "$@"
