# Benchmark (run by test/bench/citus.sh, not by the test suite): media_reco on
# a Citus coordinator and two workers on this machine, against the same rows
# in a local table of the coordinator, in one run.
#   1. Batch prediction: SELECT media_reco.predict('churn', s) over
#      BENCH_PREDICT_ROWS subscribers (default 2,000,000), from a table
#      distributed by id (6 shards, 3 per worker: predict runs on the
#      workers) and from the local table (one backend, and a parallel plan).
#   2. refresh_neighbors over BENCH_REFRESH_ROWS generated interactions
#      (default 1,000,000) from a distributed and from a local source, both
#      writing the neighbour store that citus_setup() made a reference table.
#   3. recommend() latency from the coordinator for both recommenders.
# Prints seconds, rows/s and the ratios (diag lines); asserts only that the
# answers agree, never a time.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use FindBin;
use lib "$FindBin::Bin/lib";
use MediaRecoTest;

my $pkglibdir = `pg_config --pkglibdir`;
chomp $pkglibdir;
plan skip_all => "Citus is not installed (no citus.so in $pkglibdir)" unless -f "$pkglibdir/citus.so";
my $predict_rows = $ENV{BENCH_PREDICT_ROWS} // 2_000_000;
my $refresh_rows = $ENV{BENCH_REFRESH_ROWS} // 1_000_000;

my ($coord, $w1, $w2) = citus_cluster(q{
shared_buffers = 512MB
maintenance_work_mem = 2GB
max_wal_size = 8GB
synchronous_commit = off
});
$coord->safe_psql('postgres', 'CREATE EXTENSION media_reco; SELECT count(*) FROM media_reco.citus_setup();');

sub sql { my ($sql) = @_; return $coord->safe_psql('postgres', $sql, timeout => 3600); }
sub timed
{
	my ($sql) = @_;
	my $t0 = time;
	my $out = sql($sql);
	return (time - $t0, $out);
}

# 1. batch prediction
sql(qq{
CREATE TABLE subs_local AS
  SELECT g AS id, (g * 7919 % 1000) / 10.0 AS minutes, (g * 104729 % 97)::float8 AS sessions,
         (g % 5)::float8 AS plan, ((g * 31) % 13 > 6)::int::float8 AS mobile,
         ((g * 7919 % 1000) / 10.0 + (g % 5) * 8 + (g * 104729 % 97) / 3.0 > 70)::int AS churned
  FROM generate_series(1::bigint, $predict_rows) g;
CREATE TABLE subs_dist (LIKE subs_local);
SELECT create_distributed_table('subs_dist', 'id');
INSERT INTO subs_dist SELECT * FROM subs_local;
CREATE TABLE subs_train AS SELECT * FROM subs_local WHERE id % 20 = 0;
SELECT media_reco.train_forest('churn', 'subs_train', 'churned',
                               ARRAY['minutes', 'sessions', 'plan', 'mobile'],
                               '{"n_trees": 50, "max_depth": 8, "seed": 1}');
VACUUM ANALYZE subs_local;
});
my $q = "SELECT count(*), sum(p) FROM (SELECT media_reco.predict('churn', s) AS p FROM %s s) x";
my ($t_dist, $a_dist) = timed(sprintf($q, 'subs_dist'));
my ($t_one, $a_one) = timed("SET max_parallel_workers_per_gather = 0; " . sprintf($q, 'subs_local'));
my ($t_par, $a_par) = timed("SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; "
	  . "SET max_parallel_workers_per_gather = 2; " . sprintf($q, 'subs_local'));
is($a_dist, $a_one, 'distributed and local predictions agree');
is($a_par, $a_one, 'parallel and serial local predictions agree');
my $plan = sql("EXPLAIN (COSTS OFF) " . sprintf($q, 'subs_dist'));
diag("predict over $predict_rows rows (forest 50 trees, depth 8):");
diag(sprintf("  distributed, 2 workers x 3 shards: %.2f s, %.0f rows/s (%.0f rows/s per worker)",
		$t_dist, $predict_rows / $t_dist, $predict_rows / $t_dist / 2));
diag(sprintf("  local table, one backend:          %.2f s, %.0f rows/s", $t_one, $predict_rows / $t_one));
diag(sprintf("  local table, parallel plan (2):    %.2f s, %.0f rows/s", $t_par, $predict_rows / $t_par));
diag(sprintf("  ratio distributed / one backend: %.2fx faster", $t_one / $t_dist));
note($plan);

# 2. refresh: the rows are pulled to the coordinator either way
# a recommender's source must exist on every node (the registry, a reference table, names it):
# the local source is an empty table of the same name on the workers
$_->safe_psql('postgres', 'CREATE TABLE ev_local (user_id bigint, item_id bigint)') for ($w1, $w2);
sql(qq{
CREATE TABLE ev_local (user_id bigint, item_id bigint);
INSERT INTO ev_local SELECT user_id, item_id FROM media_reco.synthetic_interactions(50000, 20000, $refresh_rows, 42);
CREATE TABLE ev_dist (LIKE ev_local);
SELECT create_distributed_table('ev_dist', 'user_id');
INSERT INTO ev_dist SELECT * FROM ev_local;
CREATE INDEX ON ev_local (user_id, item_id);
CREATE INDEX ON ev_dist (user_id, item_id);
SELECT media_reco.create_recommender('r_local', 'ev_local', k => 50);
SELECT media_reco.create_recommender('r_dist', 'ev_dist', k => 50);
});
my ($t_rl) = timed("SELECT media_reco.refresh_neighbors('r_local')");
my ($t_rd) = timed("SELECT media_reco.refresh_neighbors('r_dist')");
is(sql(q{SELECT md5(string_agg(s.item_id || ':' || s.neighbor_ids::text || s.similarities::text, ',' ORDER BY s.item_id))
         FROM media_reco.neighbor_store s JOIN media_reco.recommenders r ON r.id = s.recommender_id WHERE r.name = 'r_dist'}),
	sql(q{SELECT md5(string_agg(s.item_id || ':' || s.neighbor_ids::text || s.similarities::text, ',' ORDER BY s.item_id))
         FROM media_reco.neighbor_store s JOIN media_reco.recommenders r ON r.id = s.recommender_id WHERE r.name = 'r_local'}),
	'distributed and local refreshes store the same lists');
diag("refresh_neighbors over $refresh_rows interactions (cosine, k 50), store a reference table:");
diag(sprintf("  local source %.2f s, distributed source %.2f s (%.2fx the local time)", $t_rl, $t_rd, $t_rd / $t_rl));

# 3. serving: recommend() per user from the coordinator, p50 / p95 over 300 users, each recommender
# (after citus_setup both read their lists from the reference-table store through the planner)
sql(q{CREATE TABLE lat (name text, ms float8);
CREATE FUNCTION pg_temp_time_recommend(rec text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz;
BEGIN
  FOR u IN 1..300 LOOP
    t0 := clock_timestamp();
    PERFORM * FROM media_reco.recommend(rec, u::bigint * 13 % 50000 + 1, 10);
    INSERT INTO lat VALUES (rec, 1000 * extract(epoch FROM clock_timestamp() - t0));
  END LOOP;
END $$;});
sql(q{SELECT pg_temp_time_recommend('r_local'); SELECT pg_temp_time_recommend('r_dist');
      SELECT pg_temp_time_recommend('r_local'); SELECT pg_temp_time_recommend('r_dist');});
for my $r ('r_local', 'r_dist')
{
	my $p = sql(qq{SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 2) || ' / '
	                  || round(percentile_cont(0.95) WITHIN GROUP (ORDER BY ms)::numeric, 2)
	                 FROM lat WHERE name = '$r'});
	diag(sprintf("recommend(k 10) from %s source: p50 / p95 %s ms (600 calls)",
			$r eq 'r_dist' ? 'the distributed' : 'the local', $p));
}

done_testing();
