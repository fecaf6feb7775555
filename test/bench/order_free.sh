#!/usr/bin/env bash
# What order-free sums cost one server: item_similarity over the same generated rows with this
# library and with the library of an earlier commit (default f19dc1e, 0.8.0: BM25 and adjusted cosine
# added doubles), interleaved over --rounds (default 5), each timing in its own session so each
# backend loads one library.  The earlier library is built from `git archive` of that commit into a
# temporary directory and installed beside this one as media_reco_prev.so (removed at the end); both
# serve this schema (the earlier one through a function of its own).  Prints each round's seconds and
# the median ratio now / before for bm25 and adjusted cosine (weighted by plays), with cosine over
# ln(1 + plays) as a control (fixed point in both); --metrics M:W[,M:W...] times others (metric:weight
# column, plays or w_log), e.g. --rev 9dab095 --metrics pearson:plays,cosine:w_log for Pearson's
# exact means and fixed point (0.10.0) against 0.9.0.
# Usage: test/bench/order_free.sh [--rows 1000000] [--rounds 5] [--rev f19dc1e] [--metrics ...].
# About 4 minutes at the defaults on 2 cores.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../setup.sh"
mr_install_packages postgresql-client-15
rows=1000000 rounds=5 rev=f19dc1e metrics=bm25:plays,adjusted_cosine:plays,cosine:w_log
while [ $# -gt 0 ]; do
    case "$1" in
        --rows) rows=$2; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        --rev) rev=$2; shift 2 ;;
        --metrics) metrics=$2; shift 2 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
prev=$(mktemp -d /tmp/media_reco_prev.XXXXXX)
libdir=$("$PG_CONFIG" --pkglibdir)
trap 'rm -rf "$prev" "$script"; "${SUDO[@]}" rm -f "$libdir/media_reco_prev.so"' EXIT
git -C "$MR_ROOT" archive "$rev" | tar -x -C "$prev"
make -s -C "$prev" PG_CONFIG="$PG_CONFIG" -j2 >/dev/null
"${SUDO[@]}" install -m 755 "$prev/media_reco.so" "$libdir/media_reco_prev.so"
script=$(mktemp)
cat > "$script" <<EOF2
set -e
psql -X -q -v ON_ERROR_STOP=1 <<'SQL'
CREATE EXTENSION media_reco;
CREATE TABLE ofr AS SELECT user_id, item_id, plays::float8 AS plays, ln(1 + plays)::float8 AS w_log
  FROM media_reco.synthetic_interactions(50000, 20000, $rows, 42);
VACUUM ANALYZE ofr;
CREATE TABLE t (round int, lib text, metric text, seconds float8);
SQL
# a session of its own: the earlier library must not load where this one has (their settings clash)
psql -X -q -v ON_ERROR_STOP=1 <<'SQL'
CREATE FUNCTION prev_similarity(source regclass, user_col name, item_col name, weight_col name, metric text,
    k integer, min_support integer, shrinkage double precision, bm25_k1 double precision, bm25_b double precision,
    ease_lambda double precision, rp3_alpha double precision, rp3_beta double precision, ease_max_items integer)
RETURNS TABLE(item_id bigint, neighbor_id bigint, similarity double precision, support integer, rank integer)
LANGUAGE C AS '\$libdir/media_reco_prev', 'item_similarity';
SQL
run() {  # run ROUND LIB METRIC WEIGHT: one session, one library
    local fn=media_reco.item_similarity
    [ "\$2" = prev ] && fn=prev_similarity
    psql -X -q -v ON_ERROR_STOP=1 <<SQL
SET maintenance_work_mem = '2GB'; SET media_reco.threads = 2;
DO \\\$\\\$ DECLARE t0 timestamptz := clock_timestamp(); n bigint;
BEGIN
  SELECT count(*) INTO n FROM \$fn('ofr', 'user_id', 'item_id', '\$4', '\$3', 20, 1, 0, 100, 0.8, NULL, NULL, NULL, NULL);
  INSERT INTO t VALUES (\$1, '\$2', '\$3', extract(epoch FROM clock_timestamp() - t0));
END \\\$\\\$;
SQL
}
for r in \$(seq 0 $rounds); do
    for m in ${metrics//,/ }; do
        run \$r prev \${m%%:*} \${m#*:}
        run \$r now \${m%%:*} \${m#*:}
    done
done
psql -X -q <<'SQL'
\echo '# item_similarity, k 20, 2 threads: $rows rows, 50,000 users, 20,000 items (round 0 a warm-up)'
SELECT p.metric, p.round, round(p.seconds::numeric, 3) AS before_s, round(n.seconds::numeric, 3) AS now_s,
       round((n.seconds / p.seconds)::numeric, 2) AS ratio
  FROM t p JOIN t n USING (round, metric) WHERE p.lib = 'prev' AND n.lib = 'now' AND round > 0 ORDER BY 1, 2;
SELECT p.metric, percentile_cont(0.5) WITHIN GROUP (ORDER BY n.seconds / p.seconds)::numeric(6, 2) AS median_ratio_now_over_before
  FROM t p JOIN t n USING (round, metric) WHERE p.lib = 'prev' AND n.lib = 'now' AND round > 0 GROUP BY 1 ORDER BY 1;
SQL
EOF2
pg_virtualenv -v 15 -o shared_buffers=512MB bash "$script"
