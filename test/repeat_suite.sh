#!/usr/bin/env bash
# The flakiness check: the README's test command N times in a row, each from
# a fresh clone of one commit, optionally beside CPU-burning loops.
#
#   bash test/repeat_suite.sh [--runs N] [--burn B] [--rev REV] [--keep-data]
#
# --runs N    how many full runs (default 10); stops counting at the first red
#             run but still reports it
# --burn B    start B busy loops (`while :; do :; done`) for the whole of each
#             run, so every wait and cancel test runs on a starved machine
# --rev REV   the commit to clone (default HEAD of this checkout)
# --keep-data clone beside this checkout (../<name>) so the tests that read
#             ../shared/data find it; by default the clones go to /tmp, where
#             those tests skip, as on CI
#
# Prints one line per run (tally, seconds) and a summary; exits non-zero if
# any run failed.  Logs stay in the printed directory.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
runs=10 burn=0 rev=HEAD keep_data=0
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) runs=$2; shift 2 ;;
        --burn) burn=$2; shift 2 ;;
        --rev) rev=$2; shift 2 ;;
        --keep-data) keep_data=1; shift ;;
        *) echo "usage: $0 [--runs N] [--burn B] [--rev REV] [--keep-data]" >&2; exit 2 ;;
    esac
done
sha=$(git -C "$here" rev-parse --short "$rev") || exit 2
logdir=$(mktemp -d /tmp/media_reco_repeat.XXXXXX)
echo "repeat_suite: $runs run(s) of $sha, $burn busy loop(s), logs in $logdir"

burners=()
stop_burners() {
    for p in "${burners[@]}"; do kill "$p" 2>/dev/null; done
    wait "${burners[@]}" 2>/dev/null
    burners=()
}
trap stop_burners EXIT

green=0 red=0
for i in $(seq 1 "$runs"); do
    if [ "$keep_data" -eq 1 ]; then
        dir="$(dirname "$here")/media_reco_repeat_$i"
    else
        dir="$logdir/clone_$i"
    fi
    rm -rf "$dir"
    git clone -q "$here" "$dir" && git -C "$dir" checkout -q "$sha" || exit 2
    for _ in $(seq 1 "$burn"); do
        (while :; do :; done) &
        burners+=($!)
    done
    t0=$(date +%s)
    bash "$dir/test/run_tests.sh" > "$logdir/run_$i.log" 2>&1
    rc=$?
    t1=$(date +%s)
    stop_burners
    tally=$(grep -aE '^tests: ' "$logdir/run_$i.log" | tail -1)
    if [ "$rc" -eq 0 ]; then green=$((green + 1)); verdict=green; else red=$((red + 1)); verdict=RED; fi
    echo "run $i: $verdict rc=$rc ${tally:-no tally} $((t1 - t0)) s"
    [ "$keep_data" -eq 1 ] && rm -rf "$dir"
done
echo "repeat_suite: $sha: $green green, $red red of $runs (busy loops: $burn)"
[ "$red" -eq 0 ]
