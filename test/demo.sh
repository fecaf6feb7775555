#!/usr/bin/env bash
# The demo: set-up, a throw-away cluster, a synthetic catalogue (seeded),
# a recommender, similar items and recommendations for a few users; the
# cluster is removed when it ends.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
echo "== demo (throw-away cluster via pg_virtualenv)"
pg_virtualenv -v 15 -o maintenance_work_mem=512MB \
    psql -X -v ON_ERROR_STOP=1 -q -f "$MR_ROOT/test/demo.sql"
