#!/usr/bin/env bash
# The ALS training core (src/als_core.c) outside the server, the working tree's against another
# revision's, interleaved in one run so the machine's noise hits both alike.
# Usage: test/bench/als_core.sh [--base REV] [--size USERS:ITEMS:ROWS] [--factors F] [--cg-steps S]
#        [--iterations N] [--threads T] [--rounds R]
# Defaults: --base HEAD, 50000:20000:1000000 (bench_als.py's 1m size), 64 factors, 3 CG steps,
# 5 iterations, 1 thread, 2 rounds.  Prints each build's median seconds per iteration per round,
# the ratio, and each build's final loss and factor checksum.
# Needs gcc, pg_config, libopenblas-serial-dev.  About 2 minutes at the defaults.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
OUT=$(mktemp -d /tmp/als_core_bench.XXXXXX)
trap 'rm -rf "$OUT"' EXIT
base=HEAD size=50000:20000:1000000 factors=64 cg=3 iters=5 threads=1 rounds=2
while [ $# -gt 0 ]; do
    case $1 in
        --base) base=$2; shift 2 ;;
        --size) size=$2; shift 2 ;;
        --factors) factors=$2; shift 2 ;;
        --cg-steps) cg=$2; shift 2 ;;
        --iterations) iters=$2; shift 2 ;;
        --threads) threads=$2; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
IFS=: read -r users items rows <<< "$size"

PC_DIR=$(ls -d /usr/lib/*/openblas-serial/pkgconfig | head -1)
BLAS_CFLAGS=$(PKG_CONFIG_PATH=$PC_DIR pkg-config --cflags openblas)
BLAS_LIBS=$(PKG_CONFIG_PATH=$PC_DIR pkg-config --libs openblas)
BLAS_LIBDIR=$(PKG_CONFIG_PATH=$PC_DIR pkg-config --variable=libdir openblas)
PG_LIB=$(pg_config --pkglibdir)
CFLAGS="-std=gnu11 -O2 -Wall -I$(pg_config --includedir-server) $BLAS_CFLAGS"
LIBS="$PG_LIB/libpgcommon.a $PG_LIB/libpgport.a $BLAS_LIBS -Wl,-rpath,$BLAS_LIBDIR -lpthread -lm"

# each build: that tree's src/ (the core files only), its als_core.c at -O3 as the Makefile does
build() {
    local src=$1 bin=$2
    gcc $CFLAGS -O3 -I"$src" -c -o "$OUT/als_core_$bin.o" "$src/als_core.c"
    gcc $CFLAGS -I"$src" -o "$OUT/$bin" "$ROOT/test/bench/als_core_bench.c" "$OUT/als_core_$bin.o" \
        "$src"/{core,parallel,simcore,ease_core}.c $LIBS
}
mkdir -p "$OUT/base_src"
git -C "$ROOT" archive "$base" src | tar -x -C "$OUT/base_src"
build "$OUT/base_src/src" base
build "$ROOT/src" new

echo "== $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== $users users, $items items, $rows rows; f = $factors, cg_steps = $cg, $iters iterations, $threads thread(s)"
echo "== base: $(git -C "$ROOT" rev-parse --short "$base"); new: working tree"
for r in $(seq 1 "$rounds"); do
    for b in base new; do
        "$OUT/$b" "$users" "$items" "$rows" "$factors" "$cg" "$iters" "$threads" > "$OUT/$b.$r.log"
        med=$(sed -nE 's/^median ([0-9.]+) s.*/\1/p' "$OUT/$b.$r.log")
        echo "round $r $b: $med s/iteration   ($(sed -nE 's/^median [0-9.]+ s\/iteration; //p' "$OUT/$b.$r.log"))"
        eval "t_${b}_$r=$med"
    done
    eval "echo \"round $r ratio base/new: \$(awk -v a=\$t_base_$r -v b=\$t_new_$r 'BEGIN {printf \"%.2f\", a / b}')x\""
done
