#!/usr/bin/env bash
# The whole pg_regress suite and the isolation specs against media_reco
# built with AddressSanitizer and UndefinedBehaviorSanitizer (gcc,
# -fno-sanitize-recover=all: any UB aborts the backend, so the test fails).
#
# The server stays the Debian build: the sanitizer runtime is preloaded
# (LD_PRELOAD) into a throw-away cluster.  The extension is installed into a
# PRIVATE COPY of the PostgreSQL tree under a temporary directory (the
# binaries are relocatable: the copy's pg_config reports paths inside it),
# so the system install other checkouts test against is untouched and the
# install lock is not needed.  The copy and the cluster are removed on exit.
#
# Fails when a test fails, a backend dies, or any sanitizer report file
# exists.  Works as root (the cluster runs as postgres) and as a sudo user.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SYS_PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
if [ "$(id -u)" -eq 0 ]; then SUDO=(); else SUDO=(sudo); fi

need=()
for p in make gcc libc6-dev libasan8 libubsan1 pkg-config postgresql-15 postgresql-server-dev-15 \
         libopenblas-dev libopenblas-serial-dev; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
    echo "== installing Debian packages: ${need[*]}"
    "${SUDO[@]}" apt-get update -qq
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

start_s=$(date +%s)
T=$(mktemp -d /tmp/media_reco_san.XXXXXX)
chmod 755 "$T"
run_pg=()
if [ "$(id -u)" -eq 0 ]; then run_pg=(runuser -u postgres --); fi
PGBIN="$T/usr/lib/postgresql/15/bin"
cleanup() {
    if [ -f "$T/data/postmaster.pid" ]; then
        "${run_pg[@]}" "$PGBIN/pg_ctl" -D "$T/data" -m immediate stop >/dev/null 2>&1 || true
    fi
    rm -rf "$T"
}
trap cleanup EXIT

echo "== private PostgreSQL tree in $T"
sharedir=$("$SYS_PG_CONFIG" --sharedir)
incdir=$("$SYS_PG_CONFIG" --includedir)
mkdir -p "$T/usr/lib/postgresql" "$T/usr/share/postgresql" "$T/usr/include"
cp -a /usr/lib/postgresql/15 "$T/usr/lib/postgresql/"
cp -a "$sharedir" "$T/usr/share/postgresql/"
cp -a "$incdir" "$T/usr/include/"
PG_CONFIG="$PGBIN/pg_config"
[ "$("$PG_CONFIG" --pkglibdir)" = "$T/usr/lib/postgresql/15/lib" ] ||
    { echo "the copied pg_config does not report paths in the copy"; exit 1; }

echo "== building media_reco with -fsanitize=address,undefined"
mkdir "$T/build"
(cd "$ROOT" && tar --exclude=.git --exclude='*.o' --exclude='*.so' --exclude='*.bc' \
    --exclude=results --exclude=output_iso --exclude=tmp_check -cf - .) | tar -xf - -C "$T/build"
SAN="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -g"
make -C "$T/build" -s -j2 PG_CONFIG="$PG_CONFIG" COPT="$SAN" >/dev/null
make -C "$T/build" -s PG_CONFIG="$PG_CONFIG" install >/dev/null
grep -q libasan <(ldd "$T/usr/lib/postgresql/15/lib/media_reco.so") ||
    { echo "media_reco.so is not linked with the sanitizer runtime"; exit 1; }

echo "== throw-away cluster with the sanitizer runtime preloaded"
mkdir -p "$T/data" "$T/sock" "$T/reports" "$T/log"
chmod 777 "$T/reports"
[ "$(id -u)" -eq 0 ] && chown -R postgres "$T/data" "$T/sock" "$T/build" "$T/log"
"${run_pg[@]}" "$PGBIN/initdb" -D "$T/data" -A trust -U postgres >/dev/null
port=$(( 20000 + RANDOM % 20000 ))
asan=$(gcc -print-file-name=libasan.so)
# Preloaded into an uninstrumented server, the runtime initialises on the
# first malloc it sees, which is inside glibc's bindtextdomain (called by
# libgpg-error's constructor) with the gettext lock held: the init's own
# gettext call then corrupts that lock and the server hangs in its first
# bindtextdomain.  This shim, preloaded after the runtime, initialises it
# before any bindtextdomain runs.
cat >"$T/asan_first.c" <<'SHIM'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stddef.h>
extern void __asan_init(void) __attribute__((weak));
char *bindtextdomain(const char *domain, const char *dir);
char *
bindtextdomain(const char *domain, const char *dir)
{
	static char *(*real) (const char *, const char *);

	if (real == NULL)
	{
		if (__asan_init)
			__asan_init();
		real = (char *(*) (const char *, const char *)) dlsym(RTLD_NEXT, "bindtextdomain");
	}
	return real(domain, dir);
}
SHIM
gcc -shared -fPIC -O2 -o "$T/asan_first.so" "$T/asan_first.c" -ldl
"${run_pg[@]}" env LD_PRELOAD="$asan:$T/asan_first.so" \
    ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:log_path=$T/reports/asan:print_stacktrace=1" \
    UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:abort_on_error=1:log_path=$T/reports/ubsan" \
    "$PGBIN/pg_ctl" -D "$T/data" -l "$T/log/server.log" -w \
    -o "-p $port -k $T/sock -c listen_addresses='' -c maintenance_work_mem=256MB" start >/dev/null

echo "== pg_regress and isolation specs"
set +e
"${run_pg[@]}" env PGHOST="$T/sock" PGPORT="$port" PGUSER=postgres \
    make -C "$T/build" -s PG_CONFIG="$PG_CONFIG" installcheck 2>&1 | tee "$T/check.log" |
    grep -E '^(ok|not ok|test) |\.\.\. |tests passed|failed'
rc=${PIPESTATUS[0]}
set -e
"${run_pg[@]}" "$PGBIN/pg_ctl" -D "$T/data" -m fast -t 20 stop >/dev/null || true

failed=0
if [ "$rc" -ne 0 ]; then
    failed=1
    for d in "$T/build/regression.diffs" "$T/build/output_iso/regression.diffs"; do
        [ -f "$d" ] && head -200 "$d"
    done
fi
# UBSan's reports go to the server's stderr (the log) whatever log_path says
if grep -E 'terminated by signal|server process .* exited with exit code [1-9]|runtime error:|Sanitizer' "$T/log/server.log"; then
    failed=1
fi
reports=$(find "$T/reports" -type f | wc -l)
if [ "$reports" -gt 0 ]; then
    failed=1
    keep=$(mktemp -d /tmp/media_reco_sanitizer_reports.XXXXXX)
    cp "$T"/reports/* "$keep/"
    echo "== $reports sanitizer report(s), kept in $keep:"
    for f in "$T"/reports/*; do echo "--- $f"; head -80 "$f"; done
fi
if [ "$failed" -ne 0 ]; then
    echo "== server log (tail)"
    tail -40 "$T/log/server.log"
fi
secs=$(( $(date +%s) - start_s ))
if [ "$failed" -eq 0 ]; then
    echo "sanitizers: clean, all tests passed (${secs}s)"
else
    echo "sanitizers: FAILED (${secs}s)"
fi
[ "$failed" -eq 0 ]
