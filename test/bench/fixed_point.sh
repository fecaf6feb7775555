#!/usr/bin/env bash
# What the fixed-point pair sums cost on one server: item_similarity (cosine, k 20, 2 threads) over the same
# generated rows with integer weights (plays: on the power-of-two grid, double sums) and with
# ln(1 + plays) (off the grid: 128-bit fixed-point sums), interleaved over --rounds (default 5), in a
# throw-away cluster.  Prints each round's seconds and the median ratio fixed / double.
# Usage: test/bench/fixed_point.sh [--rows 1000000] [--users 50000] [--items 20000] [--rounds 5].
# About 2 minutes at the defaults on 2 cores.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../setup.sh"
mr_install_packages postgresql-client-15
rows=1000000 users=50000 items=20000 rounds=5
while [ $# -gt 0 ]; do
    case "$1" in
        --rows) rows=$2; shift 2 ;;
        --users) users=$2; shift 2 ;;
        --items) items=$2; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
script=$(mktemp)
trap 'rm -f "$script"' EXIT
cat > "$script" <<EOF
set -e
psql -X -q -v ON_ERROR_STOP=1 <<'SQL'
CREATE EXTENSION media_reco;
CREATE TABLE fp AS SELECT user_id, item_id, plays::float8 AS w_int, ln(1 + plays)::float8 AS w_log
  FROM media_reco.synthetic_interactions($users, $items, $rows, 42);
VACUUM ANALYZE fp;
CREATE TABLE t (round int, kind text, seconds float8);
CREATE FUNCTION run(r int, col text) RETURNS void LANGUAGE plpgsql AS \$\$
DECLARE t0 timestamptz := clock_timestamp(); n bigint;
BEGIN
  SELECT count(*) INTO n FROM media_reco.item_similarity('fp', weight_col => col, k => 20);
  INSERT INTO t VALUES (r, col, extract(epoch FROM clock_timestamp() - t0));
END \$\$;
SET maintenance_work_mem = '2GB';
SET media_reco.threads = 2;
SELECT run(0, 'w_int'), run(0, 'w_log');   -- warm-up, not counted
SELECT run(r, c) FROM generate_series(1, $rounds) r, (VALUES ('w_int'), ('w_log')) v(c) ORDER BY r, c;
\echo '# item_similarity, cosine, k 20: $rows rows, $users users, $items items'
SELECT round, round(i.seconds::numeric, 3) AS double_s, round(l.seconds::numeric, 3) AS fixed_s,
       round((l.seconds / i.seconds)::numeric, 2) AS ratio
  FROM t i JOIN t l USING (round) WHERE i.kind = 'w_int' AND l.kind = 'w_log' AND round > 0 ORDER BY round;
SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY l.seconds / i.seconds)::numeric(6, 2) AS median_ratio_fixed_over_double
  FROM t i JOIN t l USING (round) WHERE i.kind = 'w_int' AND l.kind = 'w_log' AND round > 0;
SQL
EOF
pg_virtualenv -v 15 -o shared_buffers=512MB bash "$script"
