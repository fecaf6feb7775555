#!/usr/bin/env bash
# EASE and RP3beta (lambda sweep, alpha x beta grid) beside cosine, BM25, user-based CF and popularity
# on MovieLens 100K (ua), ml-latest-small (temporal split) and Last.fm user_artists (random split), in a
# throw-away cluster.  Needs ../shared/data (skips a missing data set).  Usage:
# test/bench/quality.sh [--data ua,mls,lastfm] [--lastfm-max-items 5000].  About 25 minutes on 2 cores
# (Last.fm: 20 of them, EASE over 15,346 artists taking 30 s a refresh).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../setup.sh"
mr_install_packages python3-psycopg2 postgresql-client-15
export MEDIA_RECO_DATA=${MEDIA_RECO_DATA:-$(cd "$MR_ROOT/.." && pwd)/shared/data}
pg_virtualenv -v 15 -o maintenance_work_mem=4GB -o shared_buffers=256MB -o synchronous_commit=off \
    /usr/bin/python3 "$MR_ROOT/test/bench/bench_quality.py" "$@"
