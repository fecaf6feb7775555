# Benchmark (run by test/bench/citus.sh, not by the test suite): media_reco on
# a Citus coordinator and two workers on this machine, against the same rows
# in a local table of the coordinator, in one run.
#   1. Batch prediction: SELECT media_reco.predict('churn', s) over
#      BENCH_PREDICT_ROWS subscribers (default 2,000,000), from a table
#      distributed by id (6 shards, 3 per worker: predict runs on the
#      workers) and from the local table (one backend, and a parallel plan).
#   2. refresh_neighbors over BENCH_REFRESH_ROWS generated interactions
#      (comma-separated sizes, default 1,000,000; 50k users and 20k items up
#      to 1M rows, 200k and 100k above; ROWS:USERS:ITEMS sets them) from a local source, from a
#      distributed one with the pair sums on the workers, from the same
#      distributed one read row by row (media_reco.citus_pair_sums off) and
#      with the default (auto: whichever moves fewer bytes), all
#      writing the neighbour store that citus_setup() made a reference table;
#      where the time goes, bytes moved, worker CPU, and a projection.
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
# metrics refreshed at each size: cosine over the unweighted rows; the others weighted by plays
my @refresh_metrics = split /,/, ($ENV{BENCH_REFRESH_METRICS} // 'cosine');

my ($coord, $w1, $w2) = citus_cluster(q{
shared_buffers = 512MB
maintenance_work_mem = 4GB
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

# 1. batch prediction (skipped with BENCH_PREDICT_ROWS=0, as is 3.)
if ($predict_rows > 0)
{
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
}

# 2. refresh over each size: a local source; the distributed source with its pair sums on the
# workers (the default); the same source read row by row on the coordinator (citus_pair_sums
# off).  Where the time goes, from refresh_history; the bytes each path moves; a projection.
# a recommender's source must exist on every node (the registry, a reference table, names it):
# the local source is an empty table of the same name on the workers
sub hist
{
	my ($name, $expr) = @_;
	return sql(qq{SELECT $expr FROM media_reco.refresh_history WHERE recommender = '$name' ORDER BY id DESC LIMIT 1});
}
my $first_size = 1;
for my $size (split /,/, $refresh_rows)
{
	# ROWS, or ROWS:USERS:ITEMS (e.g. 2000000:10000:2000, long histories over a small catalogue)
	my ($rows, $users, $items) = split /:/, $size;
	$users //= $rows <= 1_000_000 ? 50_000 : 200_000;
	$items //= $rows <= 1_000_000 ? 20_000 : 100_000;
	sql(q{SELECT media_reco.drop_recommender(name) FROM media_reco.recommenders WHERE name IN ('r_local', 'r_dist', 'r_pull', 'r_auto');
DROP TABLE IF EXISTS ev_local, ev_dist;});
	$_->safe_psql('postgres', 'DROP TABLE IF EXISTS ev_local; CREATE TABLE ev_local (user_id bigint, item_id bigint, plays int)') for ($w1, $w2);
	sql(qq{
CREATE TABLE ev_local (user_id bigint, item_id bigint, plays int);
INSERT INTO ev_local SELECT user_id, item_id, plays FROM media_reco.synthetic_interactions($users, $items, $rows, 42);
CREATE TABLE ev_dist (LIKE ev_local);
SELECT create_distributed_table('ev_dist', 'user_id');
INSERT INTO ev_dist SELECT * FROM ev_local;
CREATE INDEX ON ev_local (user_id, item_id);
CREATE INDEX ON ev_dist (user_id, item_id);
ANALYZE ev_local; ANALYZE ev_dist;
});
	for my $metric (@refresh_metrics)
	{
	my $args = $metric eq 'cosine' ? "k => 50" : "weight_col => 'plays', metric => '$metric', k => 50";
	sql(qq{SELECT media_reco.drop_recommender(name) FROM media_reco.recommenders WHERE name IN ('r_local', 'r_dist', 'r_pull', 'r_auto');
SELECT media_reco.create_recommender('r_local', 'ev_local', $args);
SELECT media_reco.create_recommender('r_dist', 'ev_dist', $args);
SELECT media_reco.create_recommender('r_pull', 'ev_dist', $args);
SELECT media_reco.create_recommender('r_auto', 'ev_dist', $args);});
	my ($t_rl) = timed("SELECT media_reco.refresh_neighbors('r_local')");
	my ($t_rd) = timed("SET media_reco.citus_pair_sums = on; SELECT media_reco.refresh_neighbors('r_dist')");
	my ($t_ra) = timed("SET media_reco.citus_pair_sums = auto; SELECT media_reco.refresh_neighbors('r_auto')");
	my ($t_rp) = timed("SET media_reco.citus_pair_sums = off; SELECT media_reco.refresh_neighbors('r_pull')");
	my $lists = q{SELECT md5(string_agg(s.item_id || ':' || s.neighbor_ids::text || s.similarities::text || s.supports::text, ',' ORDER BY s.item_id))
	                FROM media_reco.neighbor_store s JOIN media_reco.recommenders r ON r.id = s.recommender_id WHERE r.name = '%s'};
	my $want = sql(sprintf($lists, 'r_local'));
	is(sql(sprintf($lists, 'r_dist')), $want, "$rows rows: pair sums on the workers store the local lists");
	is(sql(sprintf($lists, 'r_pull')), $want, "$rows rows: rows pulled to the coordinator store the local lists");
	is(sql(sprintf($lists, 'r_auto')), $want, "$rows rows: auto stores the local lists");
	is(hist('r_dist', q{parameters->'citus'->>'pushed_down'}), 'true', "$rows rows: r_dist pushed down");
	my ($l_read, $l_comp, $l_write) = split /\|/, hist('r_local', q{read_seconds || '|' || compute_seconds || '|' || write_seconds});
	my ($p_read, $p_comp, $p_write) = split /\|/, hist('r_pull', q{read_seconds || '|' || compute_seconds || '|' || write_seconds});
	my ($gather, $merge, $write, $bytes, $states, $cpu_sum, $cpu_max, $nodes) = split /\|/, hist('r_dist',
		q{(parameters->'citus'->>'gather_seconds') || '|' || (parameters->'citus'->>'merge_seconds') || '|' || write_seconds
		  || '|' || (parameters->'citus'->>'state_bytes') || '|' || (parameters->'citus'->>'states')
		  || '|' || (parameters->'citus'->>'shard_cpu_seconds') || '|' || (parameters->'citus'->>'shard_cpu_seconds_max')
		  || '|' || (parameters->'citus'->'node_cpu_seconds')::text});
	my $pulled = sql($metric eq 'cosine' ? q{SELECT sum(length(user_id::text) + length(item_id::text) + 2) FROM ev_local}
		: q{SELECT sum(length(user_id::text) + length(item_id::text) + length(plays::text) + 3) FROM ev_local});
	my ($pairs) = hist('r_dist', 'pairs');
	my ($fixed, $first) = split /\|/, hist('r_dist', q{(parameters->'citus'->>'fixed_point') || '|' || coalesce(parameters->'citus'->>'first_pass_seconds', '0')});
	diag("refresh_neighbors over $rows interactions ($users users, $items items; "
		  . ($metric eq 'cosine' ? 'cosine' : "$metric weighted by plays") . ", k 50; $pairs stored pairs), "
		  . "the store a reference table" . ($fixed eq 'true' ? ', sums in fixed point' : '') . ":");
	diag(sprintf("  local source:                     %6.2f s  (read %.2f, pairs + top-k %.2f, write %.2f)",
			$t_rl, $l_read, $l_comp, $l_write));
	diag(sprintf("  distributed, pair sums on workers: %6.2f s  (workers' sums + transfer %.2f%s, merge + top-k %.2f, write %.2f)",
			$t_rd, $gather, $first > 0 ? sprintf(" of which the first pass (BM25's lengths, Pearson's item sums) %.2f", $first) : '', $merge, $write));
	diag(sprintf("  distributed, rows pulled:         %6.2f s  (read %.2f, pairs + top-k %.2f, write %.2f)",
			$t_rp, $p_read, $p_comp, $p_write));
	my $auto = hist('r_auto', q{CASE WHEN (parameters->'citus'->>'pushed_down')::boolean THEN 'the pair sums on the workers' ELSE 'the rows' END});
	diag(sprintf("  distributed, auto (the default):   %6.2f s  (chose %s)", $t_ra, $auto));
	diag(sprintf("  ratios to the local source: pair sums on workers %.2fx, rows pulled %.2fx the local time",
			$t_rd / $t_rl, $t_rp / $t_rl));
	diag(sprintf("  moved to the coordinator: pair sums %.1f MB in %d shard states (%.1f MB as hex text on the wire);"
		  . " rows pulled %.1f MB as text", $bytes / 1e6, $states, 2 * $bytes / 1e6, $pulled / 1e6));
	diag(sprintf("  worker CPU: %.2f s over the shards (largest shard %.2f s), per worker (port: s) %s", $cpu_sum, $cpu_max, $nodes));
	# projection: the shards are independent, so on N worker machines of c cores (shards >= N c)
	# the worker phase takes about (shard CPU) / (N c) plus the states' transfer at the network's
	# bandwidth; the coordinator's merge, top-k and write do not shrink with N
	my $c = 2;
	my $bw = 125e6;    # 1 Gbit/s
	my @proj;
	for my $n (2, 4, 8, 16)
	{
		push @proj, sprintf("N=%d %.2f s", $n, $cpu_sum / ($n * $c) + 2 * $bytes / $bw + $merge + $write);
	}
	diag(sprintf("  projected wall time on N worker machines of %d cores, 1 Gbit/s (shard CPU / (N x %d) + 2 x state bytes / bandwidth"
		  . " + merge + write): %s; one node here %.2f s", $c, $c, join(', ', @proj), $t_rl));
	}
}

# 3. serving: recommend() per user from the coordinator, p50 / p95 over 300 users, each recommender
# (after citus_setup both read their lists from the reference-table store through the planner)
if ($predict_rows > 0)
{
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
}

done_testing();
