#!/usr/bin/env bash
# The whole test suite on a fresh Debian 12 + PostgreSQL 15 machine:
# set-up (packages, build, install), then pg_regress in a throw-away cluster,
# then the TAP tests (each makes its own cluster).  Exits non-zero on any
# failure.  Works as root (TAP runs as the postgres user) and as a sudo user.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$MR_ROOT"

passed=0
failed=0

echo "== pg_regress (throw-away cluster via pg_virtualenv)"
rm -rf results regression.diffs regression.out
if pg_virtualenv -v 15 -o maintenance_work_mem=256MB \
        make -s PG_CONFIG="$PG_CONFIG" installcheck; then
    passed=$((passed + 1))
else
    failed=$((failed + 1))
    [ -f regression.diffs ] && head -200 regression.diffs
fi

echo "== TAP tests"
tapdir=$(mktemp -d /tmp/media_reco_tap.XXXXXX)
cp -r "$MR_ROOT/test/t" "$tapdir/"
data_dir=${MEDIA_RECO_DATA:-$(cd "$MR_ROOT/.." && pwd)/shared/data}
run_as=()
if [ "$(id -u)" -eq 0 ]; then
    chown -R postgres "$tapdir"
    run_as=(runuser -u postgres --)
fi
if (cd "$tapdir" && "${run_as[@]}" env PATH="$MR_PGBIN:$PATH" TESTDIR="$tapdir" \
        PG_REGRESS="$MR_PGXS/src/test/regress/pg_regress" MEDIA_RECO_DATA="$data_dir" \
        prove -I "$MR_PGXS/src/test/perl" t/*.pl); then
    passed=$((passed + 1))
else
    failed=$((failed + 1))
    find "$tapdir/tmp_check/log" -name 'regress_log_*' -exec tail -50 {} \; 2>/dev/null || true
fi
rm -rf "$tapdir"

echo "suites: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
