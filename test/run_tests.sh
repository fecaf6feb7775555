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
log=$(mktemp /tmp/media_reco_tests.XXXXXX)

# MR_ONLY=tap runs only the TAP tests (make prove); unset runs everything.
# MR_TAP_TESTS names the TAP files to run (default t/*.pl; test/citus/run.sh
# runs t/010_citus.pl alone)
MR_ONLY=${MR_ONLY:-}
MR_TAP_TESTS=${MR_TAP_TESTS:-t/*.pl}
if [ "$MR_ONLY" != tap ]; then
echo "== pg_regress and isolation specs (throw-away cluster via pg_virtualenv)"
rm -rf results regression.diffs regression.out output_iso
set +e
pg_virtualenv -v 15 -o maintenance_work_mem=256MB \
    make -s PG_CONFIG="$PG_CONFIG" installcheck 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
n_ok=$(grep -cE '^(ok|test) .*\.\.\. ok' "$log" || true)
n_bad=$(grep -cE '\.\.\. FAILED' "$log" || true)
if [ "$rc" -ne 0 ] && [ "$n_bad" -eq 0 ]; then n_bad=1; fi
passed=$((passed + n_ok)); failed=$((failed + n_bad))
[ -f regression.diffs ] && head -300 regression.diffs
[ -f output_iso/regression.diffs ] && head -300 output_iso/regression.diffs

# unit tests of the plain-C cores, outside the server (when test/unit exists);
# their output ends with "unit: N passed, N failed"
if [ -f test/unit/Makefile ]; then
    echo "== unit tests (make -C test/unit check)"
    set +e
    make -C test/unit -s PG_CONFIG="$PG_CONFIG" check 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    set -e
    counts=$(sed -nE 's/^unit: ([0-9]+) passed, ([0-9]+) failed$/\1 \2/p' "$log" | tail -1)
    n_ok=${counts% *}; n_bad=${counts#* }
    if [ -z "$counts" ]; then n_ok=0; n_bad=0; fi
    if [ "$rc" -ne 0 ] && [ "$n_bad" -eq 0 ]; then n_bad=1; fi
    passed=$((passed + n_ok)); failed=$((failed + n_bad))
fi

# the README's function reference against the install script (no server)
echo "== README function reference (test/check_reference.py)"
mr_install_packages python3
if /usr/bin/python3 test/check_reference.py > "$log" 2>&1; then
    passed=$((passed + 1)); tail -1 "$log"
else
    failed=$((failed + 1)); grep -vE '^ok ' "$log" | head -40
fi
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
set +e
(cd "$tapdir" && "${run_as[@]}" env PATH="$MR_PGBIN:$PATH" TESTDIR="$tapdir" \
    PG_REGRESS="$MR_PGXS/src/test/regress/pg_regress" MEDIA_RECO_DATA="$data_dir" \
    prove -I "$MR_PGXS/src/test/perl" $MR_TAP_TESTS) 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
total=$(sed -nE 's/^Files=[0-9]+, Tests=([0-9]+),.*/\1/p' "$log" | tail -1)
n_bad=$(sed -nE 's/.*Failed ([0-9]+)\/[0-9]+ subtests.*/\1/p' "$log" | awk '{s+=$1} END {print s+0}')
if [ "$rc" -ne 0 ] && [ "$n_bad" -eq 0 ]; then n_bad=1; fi
passed=$((passed + ${total:-0} - n_bad)); failed=$((failed + n_bad))
# the measured cancel latencies and the premises that give them meaning
grep -haE 'premise:|landed in|ended the statement|each within' "$tapdir"/tmp_check/log/regress_log_* 2>/dev/null \
    | sed -E 's/^\[[^]]*\]\([^)]*\) //' | grep -E '^(not )?ok ' || true
if [ "$rc" -ne 0 ]; then
    find "$tapdir/tmp_check/log" -name 'regress_log_*' -exec tail -60 {} \; 2>/dev/null || true
fi
rm -rf "$tapdir" "$log"

echo "tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
