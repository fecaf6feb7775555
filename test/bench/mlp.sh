#!/usr/bin/env bash
# The ad-targeting network side by side with scikit-learn's MLPClassifier, in a throw-away cluster.
# Usage: test/bench/mlp.sh [--quick]; Fashion-MNIST runs when Debian's dataset-fashion-mnist is installed.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../setup.sh"
mr_install_packages python3-sklearn python3-numpy python3-psycopg2 postgresql-client-15 dataset-fashion-mnist
export MEDIA_RECO_DATA=${MEDIA_RECO_DATA:-$(cd "$MR_ROOT/.." && pwd)/shared/data}
pg_virtualenv -v 15 -o maintenance_work_mem=2GB -o synchronous_commit=off \
    /usr/bin/python3 "$MR_ROOT/test/bench/bench_mlp.py" "$@"
