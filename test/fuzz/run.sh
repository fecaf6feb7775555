#!/usr/bin/env bash
# libFuzzer targets for every decoder of untrusted bytes, built from the
# plain-C cores without a server (see test/fuzz/README.md).
#
#   bash test/fuzz/run.sh            each target for 1,000,000 executions
#   FUZZ_RUNS=20000 bash test/fuzz/run.sh     a quick check
#   FUZZ_TARGETS="fuzz_forest" bash test/fuzz/run.sh   some targets only
#
# Every test/fuzz/fuzz_*.c is a target; its seed corpus is
# test/fuzz/corpus/<target>/ (or corpus/<target without fuzz_>/).  The cores
# are the src/*.c files that include neither postgres.h nor a header that
# does; they go into one archive, so each target links only what it uses.
# New inputs libFuzzer finds go to a temporary corpus, never into the repo.
# Exits non-zero on any finding (ASan, UBSan, a FUZZ_CHECK, a timeout).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
RUNS=${FUZZ_RUNS:-1000000}
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
if [ "$(id -u)" -eq 0 ]; then SUDO=(); else SUDO=(sudo); fi

need=()
for p in clang-14 libclang-rt-14-dev postgresql-server-dev-15; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
    echo "== installing Debian packages: ${need[*]}"
    "${SUDO[@]}" apt-get update -qq
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
CC=${FUZZ_CC:-$(command -v clang-14 || command -v clang)}
PGINC=$("$PG_CONFIG" --includedir-server)
PGLIB=$("$PG_CONFIG" --pkglibdir)

work=$(mktemp -d /tmp/media_reco_fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT
SAN="-fsanitize=address,undefined -fno-sanitize-recover=all"
CFLAGS="-g -O1 -fno-omit-frame-pointer -std=gnu11 -ffp-contract=off -Wall -Wno-ignored-attributes -I$ROOT/src -I$PGINC"

# the plain-C cores
pg_headers=$(cd "$ROOT/src" && grep -l '^#include "postgres.h"' ./*.h | sed 's|^\./||' || true)
cores=()
for c in "$ROOT"/src/*.c; do
    grep -q '^#include "postgres.h"' "$c" && continue
    skip=0
    for h in $pg_headers; do
        grep -q "^#include \"$h\"" "$c" && { skip=1; break; }
    done
    [ "$skip" -eq 0 ] && cores+=("$c")
done
echo "== cores: $(for c in "${cores[@]}"; do basename "$c"; done | tr '\n' ' ')"
objs=()
for c in "${cores[@]}"; do
    o="$work/$(basename "$c" .c).o"
    $CC $CFLAGS $SAN -fsanitize=fuzzer-no-link -c "$c" -o "$o"
    objs+=("$o")
done
ar rcs "$work/libcores.a" "${objs[@]}"

targets=()
if [ -n "${FUZZ_TARGETS:-}" ]; then
    for t in $FUZZ_TARGETS; do targets+=("$ROOT/test/fuzz/$t.c"); done
else
    for t in "$ROOT"/test/fuzz/fuzz_*.c; do targets+=("$t"); done
fi

failed=0
summary=()
for src in "${targets[@]}"; do
    name=$(basename "$src" .c)
    seeds="$ROOT/test/fuzz/corpus/$name"
    [ -d "$seeds" ] || seeds="$ROOT/test/fuzz/corpus/${name#fuzz_}"
    bin="$work/$name"
    # a target names the further libraries it needs (e.g. OpenBLAS) on a "// FUZZ_LIBS:" line
    extra_libs=$(sed -n 's|^// FUZZ_LIBS: *||p' "$src" | head -1)
    # shellcheck disable=SC2086
    if ! $CC $CFLAGS $SAN -fsanitize=fuzzer "$src" "$work/libcores.a" \
            "$PGLIB/libpgcommon.a" "$PGLIB/libpgport.a" $extra_libs -lpthread -lm -o "$bin"; then
        summary+=("$name: BUILD FAILED"); failed=1; continue
    fi
    mkdir -p "$work/corpus_$name" "$work/artifacts_$name"
    dirs=("$work/corpus_$name")
    [ -d "$seeds" ] && dirs+=("$seeds")
    log="$work/$name.log"
    start=$(date +%s)
    set +e
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:symbolize=1 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        "$bin" -runs="$RUNS" -seed=1 -timeout=25 -rss_limit_mb=2048 -print_final_stats=1 \
            -artifact_prefix="$work/artifacts_$name/" "${dirs[@]}" >"$log" 2>&1
    rc=$?
    set -e
    secs=$(( $(date +%s) - start ))
    done_line=$(grep -E '^Done [0-9]+ runs' "$log" | tail -1 || true)
    execs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+).*/\1/p' "$log" | tail -1)
    cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 || true)
    nseeds=$( [ -d "$seeds" ] && find "$seeds" -type f | wc -l || echo 0)
    if [ "$rc" -ne 0 ] || [ -z "$done_line" ]; then
        failed=1
        summary+=("$name: FINDING (exit $rc) after ${execs:-?} executions, ${secs}s")
        echo "== $name: finding; log tail:"
        tail -60 "$log"
        for a in "$work/artifacts_$name"/*; do
            [ -f "$a" ] || continue
            keep="$ROOT/test/fuzz/findings/$name-$(basename "$a")"
            mkdir -p "$ROOT/test/fuzz/findings"
            cp "$a" "$keep"
            echo "   input kept in $keep"
        done
    else
        summary+=("$name: ok, ${execs:-$RUNS} executions in ${secs}s, $nseeds seeds, $cov")
    fi
    echo "${summary[-1]}"
done
echo "== fuzz summary"
printf '%s\n' "${summary[@]}"
[ "$failed" -eq 0 ]
