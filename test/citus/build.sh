#!/usr/bin/env bash
# Builds and installs Citus into PostgreSQL 15 from source (Citus is not in
# Debian; 13.x is the last line for PostgreSQL 15), for the Citus tests.
#   bash test/citus/build.sh SOURCE
# SOURCE is a Citus checkout (built as it is) or a bare git directory (for
# example a mirror of github.com/citusdata/citus): then the newest v13.* tag
# is exported with git archive into a temporary build directory.  Nothing
# of Citus is copied into this repository.  Build dependencies come from
# Debian apt, as test/setup.sh installs media_reco's.  libcurl (anonymous
# statistics), lz4 and zstd (columnar compression) are used only when their
# -dev packages are already installed; MR_CITUS_WITH_COMPRESSION=1 installs
# liblz4-dev and libzstd-dev first.  One exception: Citus's columnar code
# includes <zstd.h> whenever PostgreSQL's own pg_config.h says HAVE_LIBZSTD
# (Debian's PostgreSQL 15 is built with zstd), whatever --without-zstd says,
# so libzstd-dev is installed then.  Works as root and as a sudo user.
set -euo pipefail

src=${1:?usage: build.sh CITUS_SOURCE_DIR_OR_BARE_GIT_DIR}
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
if [ "$(id -u)" -eq 0 ]; then SUDO=(); else SUDO=(sudo); fi

have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
install_pkgs() {
    local missing=() p
    for p in "$@"; do have_pkg "$p" || missing+=("$p"); done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "== installing Debian packages: ${missing[*]}"
        "${SUDO[@]}" apt-get update -qq
        "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
}

install_pkgs git make gcc libc6-dev pkg-config autoconf flex bison \
    postgresql-15 postgresql-server-dev-15 libssl-dev libkrb5-dev zlib1g-dev \
    libicu-dev libreadline-dev libxslt1-dev libselinux1-dev libpam0g-dev
if [ "${MR_CITUS_WITH_COMPRESSION:-0}" = 1 ]; then install_pkgs liblz4-dev libzstd-dev; fi
if grep -q '^#define HAVE_LIBZSTD 1' "$("$PG_CONFIG" --includedir-server)/pg_config.h"; then
    install_pkgs libzstd-dev
fi

build=$(mktemp -d /tmp/citus_build.XXXXXX)
trap 'rm -rf "$build"' EXIT
if [ -f "$src/configure" ]; then
    echo "== building the Citus checkout $src"
    cp -a "$src/." "$build/"
else
    gitdir=$src
    [ -d "$src/.git" ] && gitdir=$src/.git
    tag=$(git --git-dir="$gitdir" tag -l 'v13.*' | grep -E '^v13\.[0-9]+\.[0-9]+$' | sort -V | tail -1)
    [ -n "$tag" ] || { echo "no v13.* tag in $gitdir" >&2; exit 1; }
    echo "== building Citus $tag from $gitdir"
    git --git-dir="$gitdir" archive --format=tar "$tag" | tar -x -C "$build"
fi

# PostgreSQL 15.x minors since late 2025 export have_createdb_privilege() from
# commands/dbcommands.h, which Citus 13's pg_version_compat.h still defines
# as a static inline for servers before 16: rename that copy (in the build
# directory only) so the server's own function is used.
compat=$build/src/include/pg_version_compat.h
if grep -q 'extern bool have_createdb_privilege' \
        "$("$PG_CONFIG" --includedir-server)/commands/dbcommands.h" 2>/dev/null &&
   grep -q '^have_createdb_privilege(void)' "$compat"; then
    echo "== the server exports have_createdb_privilege: renaming Citus's compat copy"
    sed -i 's/^have_createdb_privilege(void)$/citus_compat_have_createdb_privilege_unused(void)/' "$compat"
fi

opts=()
have_pkg libcurl4-openssl-dev || have_pkg libcurl4-gnutls-dev || opts+=(--without-libcurl)
have_pkg liblz4-dev || opts+=(--without-lz4)
have_pkg libzstd-dev || opts+=(--without-zstd)
cd "$build"
echo "== ./configure ${opts[*]}"
./configure PG_CONFIG="$PG_CONFIG" "${opts[@]}" >configure.log 2>&1 \
    || { tail -40 configure.log; exit 1; }
make -s -j2 >make.log 2>&1 || { tail -60 make.log; exit 1; }
"${SUDO[@]}" make -s install >install.log 2>&1 || { tail -40 install.log; exit 1; }
lib=$("$PG_CONFIG" --pkglibdir)/citus.so
ver=$(sed -nE "s/^default_version = '([^']+)'.*/\1/p" "$("$PG_CONFIG" --sharedir)/extension/citus.control")
echo "== Citus installed: $lib (extension version $ver)"
