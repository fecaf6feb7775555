#!/usr/bin/env bash
# EASE's dense linear algebra (src/ease_core.c) outside the server, against LAPACK and numpy.
# Usage: test/bench/ease_core.sh [--quick] [--tiles] [N ...]   (default N: 2000 5000 10000)
#   1. whether the serial OpenBLAS may be called from several threads at once: concurrent
#      dgemm/dtrsm/dsyrk compared bit for bit with lone calls, without and with ease_core.c's
#      pool lock;
#   2. per N: ease_gram, ease_factor + ease_invert on 1 and 2 threads vs LAPACK dpotrf + dpotri
#      (serial OpenBLAS) on the same G + lambda I, the longest gap between two interrupt polls,
#      and numpy's np.linalg.inv of the same matrix (Debian's numpy: threaded OpenBLAS, all cores);
#   --tiles: the tile-size sweep that chose EASE_TILE and EASE_INNER (at n = 5000).
# Needs gcc, pg_config, libopenblas-serial-dev; numpy is optional.  About 10 minutes on 2 cores.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
OUT=$(mktemp -d /tmp/ease_core_bench.XXXXXX)
trap 'rm -rf "$OUT"' EXIT

quick=0 tiles=0 sizes=()
for a in "$@"; do
    case $a in
        --quick) quick=1 ;;
        --tiles) tiles=1 ;;
        *) sizes+=("$a") ;;
    esac
done
[ ${#sizes[@]} -gt 0 ] || { [ $quick = 1 ] && sizes=(2000) || sizes=(2000 5000 10000); }

PC_DIR=$(ls -d /usr/lib/*/openblas-serial/pkgconfig | head -1)
BLAS_CFLAGS=$(PKG_CONFIG_PATH=$PC_DIR pkg-config --cflags openblas)
BLAS_LIBS=$(PKG_CONFIG_PATH=$PC_DIR pkg-config --libs openblas)
BLAS_LIBDIR=$(PKG_CONFIG_PATH=$PC_DIR pkg-config --variable=libdir openblas)
PG_LIB=$(pg_config --pkglibdir)
CFLAGS="-std=gnu11 -O2 -Wall -I$ROOT/src -I$(pg_config --includedir-server) $BLAS_CFLAGS"
LIBS="$PG_LIB/libpgcommon.a $PG_LIB/libpgport.a $BLAS_LIBS -Wl,-rpath,$BLAS_LIBDIR -lpthread -lm"
B=$ROOT/test/bench/ease_core_bench.c
gcc $CFLAGS -DEASE_BENCH_RAW -o "$OUT/raw" "$B" $LIBS
gcc $CFLAGS -o "$OUT/bench" "$B" "$ROOT"/src/{ease_core,core,parallel,simcore}.c $LIBS

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== OpenBLAS: $(readlink -f "$BLAS_LIBDIR/libopenblas.so.0")"
echo "   pthread symbols imported (a USE_LOCKING build would import pthread_mutex_lock): $(nm -D "$BLAS_LIBDIR/libopenblas.so.0" | grep -c pthread || true)"
scale=1
[ $quick = 1 ] && scale=0.2
"$OUT/raw" stress $scale
"$OUT/bench" stress $scale

[ $tiles = 1 ] && "$OUT/bench" tiles 5000

have_numpy=0
/usr/bin/python3 -c 'import numpy' 2>/dev/null && have_numpy=1
for n in "${sizes[@]}"; do
    echo "== n = $n, load $(cut -d' ' -f1-3 /proc/loadavg)"
    # best of several runs on a shared machine: 3 up to n = 5000, then 2 (numpy 1 at 10000)
    reps=3 np_reps=3
    [ "$n" -gt 5000 ] && reps=2 np_reps=1
    [ $quick = 1 ] && reps=1 np_reps=1
    if [ $have_numpy = 1 ]; then
        "$OUT/bench" time "$n" "$reps" "$OUT/g.bin" | tee "$OUT/log"
        /usr/bin/python3 - "$n" "$OUT/g.bin" "$OUT/log" "$np_reps" <<'EOF'
import sys, time, re
import numpy as np
n, path, log = int(sys.argv[1]), sys.argv[2], open(sys.argv[3]).read()
g = np.fromfile(path, dtype=np.float64).reshape(n, n)   # G + lambda I, symmetric
best = None
for _ in range(int(sys.argv[4])):
    t0 = time.perf_counter()
    p = np.linalg.inv(g)
    t = time.perf_counter() - t0
    best = t if best is None else min(best, t)
r = dict(kv.split('=') for kv in re.search(r'^result (.*)$', log, re.M).group(1).split())
e1, e2 = float(r['ease1']), float(r['ease2'])
print(f"  numpy {np.__version__} np.linalg.inv (best of {sys.argv[4]}): {best:.3f} s; numpy / ease = {best / e1:.2f} (1 thread), "
      f"{best / e2:.2f} (2 threads)")
EOF
    else
        "$OUT/bench" time "$n" "$reps"
        echo "  (numpy not installed: /usr/bin/python3 -c 'import numpy' failed)"
    fi
    rm -f "$OUT/g.bin"
done
