#!/usr/bin/env bash
# The Citus tests: builds and installs media_reco (test/setup.sh, holding the
# install lock), then runs the TAP test t/010_citus.pl, which starts a Citus
# coordinator and two workers on this machine.  Citus must be installed
# first: bash test/citus/build.sh /path/to/citus (a checkout, or a bare git
# mirror whose newest v13.* tag it builds).  Without Citus the test skips,
# saying so, and this command fails, so that a Citus run that tested nothing
# is not mistaken for a green one.  Works as root (TAP runs as postgres) and
# as a sudo user.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
if [ ! -f "$("$PG_CONFIG" --pkglibdir)/citus.so" ]; then
    echo "Citus is not installed ($("$PG_CONFIG" --pkglibdir)/citus.so is missing);" \
         "build it with: bash test/citus/build.sh /path/to/citus-source-or-bare-git-dir" >&2
    exit 1
fi
MR_ONLY=tap MR_TAP_TESTS=t/010_citus.pl exec bash "$here/../run_tests.sh"
