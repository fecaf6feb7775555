#!/usr/bin/env bash
# Sourced by test/demo.sh, test/run_tests.sh and the benchmarks: installs the
# Debian packages media_reco needs (when missing), then builds and installs
# the extension into PostgreSQL 15.  Works as root and as a user with sudo.
set -euo pipefail

MR_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
if [ "$(id -u)" -eq 0 ]; then SUDO=(); else SUDO=(sudo); fi

mr_install_packages() {
    local missing=() p
    for p in "$@"; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
            missing+=("$p")
        fi
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "== installing Debian packages: ${missing[*]}"
        "${SUDO[@]}" apt-get update -qq
        "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
}

mr_install_packages make gcc libc6-dev pkg-config postgresql-15 postgresql-common \
    postgresql-server-dev-15 libopenblas-dev libopenblas-serial-dev libipc-run-perl

# One installed copy of the extension per machine: two runs from different
# checkouts (or a benchmark beside the tests) would replace each other's
# library mid-run.  The lock is held until the sourcing script exits.
# (opened read-only: flock needs no write access, so root's and a user's runs share it)
[ -e /tmp/media_reco.install.lock ] || { : >/tmp/media_reco.install.lock && chmod 0644 /tmp/media_reco.install.lock; }
exec {MR_INSTALL_LOCK_FD}</tmp/media_reco.install.lock
if ! flock -n "$MR_INSTALL_LOCK_FD"; then
    echo "== waiting for another media_reco build/test run on this machine (/tmp/media_reco.install.lock)"
    flock "$MR_INSTALL_LOCK_FD"
fi

echo "== building media_reco"
make -C "$MR_ROOT" -s PG_CONFIG="$PG_CONFIG" -j2 >/dev/null
"${SUDO[@]}" make -C "$MR_ROOT" -s PG_CONFIG="$PG_CONFIG" install >/dev/null

MR_PGBIN=$("$PG_CONFIG" --bindir)
# .../lib/pgxs (pg_config --pgxs names .../lib/pgxs/src/makefiles/pgxs.mk)
MR_PGXS=$(cd "$(dirname "$("$PG_CONFIG" --pgxs)")/../.." && pwd)
export MR_ROOT PG_CONFIG MR_PGBIN MR_PGXS
