# media_reco on a Citus cluster (a coordinator and two workers on this
# machine).  Part 1, correct results: the same generated interactions in a
# local table, in a table distributed by the user column (three shards per
# worker) and in a reference table; every function that reads a source must
# give exactly the same rows from each (compared as sorted text).  Before
# 0.6.0 the direct heap scan read the coordinator's empty shell of a Citus
# table and refreshed an empty neighbour table.  Part 2, serving on the
# cluster: media_reco.citus_setup() makes media_reco's tables reference
# tables; recommend() then reads the history with a query Citus routes to
# the one shard of that user, answers the same from a worker, and
# predict('churn', s) over a distributed table runs on the workers.
# Skips unless Citus is installed (test/citus/build.sh builds it).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use MediaRecoTest;

my $pkglibdir = `pg_config --pkglibdir`;
chomp $pkglibdir;
plan skip_all => "Citus is not installed (no citus.so in $pkglibdir; build it with "
  . "bash test/citus/build.sh /path/to/citus); skipping the Citus tests"
  unless -f "$pkglibdir/citus.so";

my ($coord, $w1, $w2) = citus_cluster("maintenance_work_mem = 256MB\n");
# created after the workers were added: Citus creates it on every node
$coord->safe_psql('postgres', 'CREATE EXTENSION media_reco');
is($w1->safe_psql('postgres', q{SELECT extversion FROM pg_extension WHERE extname = 'media_reco'}),
	$coord->safe_psql('postgres', q{SELECT default_version FROM pg_available_extensions WHERE name = 'media_reco'}),
	'CREATE EXTENSION media_reco reached the workers');

# the pair sums on the workers wherever they apply (the default, auto, reads the rows when
# the sums would be larger, as they are for most sources here; part 3 tests auto itself)
$coord->safe_psql('postgres', 'ALTER DATABASE postgres SET media_reco.citus_pair_sums = on');

# one run of psql on the coordinator; dies on error
sub sql { my ($sql, $node) = @_; return ($node // $coord)->safe_psql('postgres', $sql); }
# a query's rows as text, sorted: what is compared between sources
sub rows
{
	my ($sql, $node) = @_;
	return sql(qq{SELECT coalesce(string_agg(x::text, E'\\n' ORDER BY x::text), '<none>') FROM ($sql) x}, $node);
}

# the interactions (seeded), three copies; features per user for the models
sql(q{
CREATE TABLE ev_local AS
    SELECT user_id, item_id, plays, rating, watched_at
      FROM media_reco.synthetic_interactions(400, 150, 8000, 7);
CREATE TABLE ev_dist (LIKE ev_local);
SELECT create_distributed_table('ev_dist', 'user_id');
INSERT INTO ev_dist SELECT * FROM ev_local;
CREATE TABLE ev_ref (LIKE ev_local);
SELECT create_reference_table('ev_ref');
INSERT INTO ev_ref SELECT * FROM ev_local;
CREATE INDEX ON ev_local (user_id, item_id);
CREATE INDEX ON ev_dist (user_id, item_id);
CREATE INDEX ON ev_ref (user_id, item_id);
CREATE TABLE f_local AS
    SELECT user_id, count(*)::float8 AS n, avg(rating)::float8 AS r, sum(plays)::float8 AS p,
           count(DISTINCT item_id)::float8 AS d, (count(*) > 20)::int AS label
      FROM ev_local GROUP BY user_id;
CREATE TABLE f_dist (LIKE f_local);
SELECT create_distributed_table('f_dist', 'user_id');
INSERT INTO f_dist SELECT * FROM f_local;
CREATE TABLE f_ref (LIKE f_local);
SELECT create_reference_table('f_ref');
INSERT INTO f_ref SELECT * FROM f_local;
});
is(sql(q{SELECT string_agg(n::text, ',' ORDER BY nodeport) FROM (
         SELECT nodeport, count(*) AS n FROM citus_shards
          WHERE table_name = 'ev_dist'::regclass GROUP BY nodeport) s}),
	'3,3', 'ev_dist has three shards on each worker');
is(sql(q{SELECT pg_relation_size('ev_dist')}), '0', "the coordinator's ev_dist is an empty shell");
is(sql(q{SELECT count(*) FROM ev_dist}), '8000', 'ev_dist holds the 8000 rows on the workers');

my @srcs = qw(dist ref);
# $sql with every %S replaced by local, dist or ref: the rows from the
# distributed and the reference copy must be those from the local one
sub same
{
	my ($sql, $what) = @_;
	(my $l = $sql) =~ s/%S/local/g;
	my $want = rows($l);
	isnt($want, '<none>', "$what: the local source gives rows");
	for my $s (@srcs)
	{
		(my $d = $sql) =~ s/%S/$s/g;
		is(rows($d), $want, "$what: $s source as local");
	}
}
# the same, for statements that write (refresh, train) and then a query
sub each_src
{
	my ($sql) = @_;
	for my $s ('local', @srcs) { (my $x = $sql) =~ s/%S/$s/g; sql($x); }
}

# --- item_similarity and every refresh metric -----------------------------
for my $m (qw(cosine jaccard adjusted_cosine pearson conditional bm25 ease rp3beta))
{
	same(qq{SELECT * FROM media_reco.item_similarity('ev_%S', 'user_id', 'item_id', 'plays', '$m', 10)},
		"item_similarity $m");
	each_src(qq{SELECT media_reco.create_recommender('${m}_%S', 'ev_%S', 'user_id', 'item_id', 'plays', '$m', 20);
SELECT media_reco.refresh_neighbors('${m}_%S')});
	same(qq{SELECT n.item_id, n.neighbor_ids, n.similarities, n.supports
              FROM media_reco.neighbor_store n JOIN media_reco.recommenders r ON r.id = n.recommender_id
             WHERE r.name = '${m}_%S'}, "refresh_neighbors $m: the stored lists");
	same(qq{SELECT interactions, users, items, pairs FROM media_reco.recommenders WHERE name = '${m}_%S'},
		"refresh_neighbors $m: the counts");
}
# unweighted, and decayed by time (now() is the transaction's: one transaction)
each_src(q{SELECT media_reco.create_recommender('unw_%S', 'ev_%S', 'user_id', 'item_id', NULL, 'cosine', 20);
SELECT media_reco.refresh_neighbors('unw_%S')});
same(q{SELECT n.item_id, n.neighbor_ids, n.similarities FROM media_reco.neighbor_store n
         JOIN media_reco.recommenders r ON r.id = n.recommender_id WHERE r.name = 'unw_%S'},
	'refresh_neighbors unweighted');
each_src(q{SELECT media_reco.create_recommender('dec_%S', 'ev_%S', 'user_id', 'item_id', 'plays', 'cosine', 20,
                                       time_col => 'watched_at', half_life => '60 days')});
# the decayed refreshes and recommendations of the three sources in one
# transaction (the decay is measured from now()), each source's rows one block
my $dec = sql(q{BEGIN;
SELECT media_reco.refresh_neighbors('dec_local');
SELECT media_reco.refresh_neighbors('dec_dist');
SELECT media_reco.refresh_neighbors('dec_ref');
CREATE TEMP TABLE dec_out AS
  SELECT s AS src, (n.item_id, n.neighbor_ids, n.similarities)::text AS x
    FROM unnest(ARRAY['local', 'dist', 'ref']) s
    JOIN media_reco.recommenders r ON r.name = 'dec_' || s
    JOIN media_reco.neighbor_store n ON n.recommender_id = r.id
  UNION ALL
  SELECT s, (u, x.item_id, x.score, x.rank)::text
    FROM unnest(ARRAY['local', 'dist', 'ref']) s, generate_series(1, 60) u,
         media_reco.recommend('dec_' || s, u, 10) x;
SELECT '<<<' || string_agg(b, E'\n====\n' ORDER BY o) FROM (
  SELECT array_position(ARRAY['local', 'dist', 'ref'], src) AS o,
         string_agg(x, E'\n' ORDER BY x) AS b FROM dec_out GROUP BY src) y;
COMMIT;});
$dec =~ s/^.*<<<//s;    # the refreshes' own output before the blocks
my @dec = split /\n====\n/, $dec;
is(scalar(@dec), 3, 'decay: three blocks');
ok(length($dec[0]) > 1000, 'decay: the local source gives rows');
is($dec[1], $dec[0], 'refresh_neighbors and recommend with time decay: dist source as local');
is($dec[2], $dec[0], 'refresh_neighbors and recommend with time decay: ref source as local');

# --- serving: recommend and its variants, batch, popular, user-based -------
same(q{SELECT u, x.* FROM generate_series(1, 80) u, media_reco.recommend('cosine_%S', u, 10) x},
	'recommend');
same(q{SELECT u, x.* FROM generate_series(1, 80) u,
              media_reco.recommend('bm25_%S', u, 5, false, ARRAY[1, 2]::bigint[], NULL, 'popular') x},
	'recommend (seen kept, exclude, popular fallback)');
same(q{SELECT u, x.* FROM generate_series(1, 40) u, media_reco.recommend('ease_%S', u, 10) x},
	'recommend from EASE');
same(q{SELECT u, x.* FROM generate_series(1, 40) u, media_reco.recommend('rp3beta_%S', u, 10) x},
	'recommend from RP3beta');
same(q{SELECT * FROM media_reco.recommend_for_items('cosine_%S', ARRAY[3, 5, 8]::bigint[])},
	'recommend_for_items');
same(q{SELECT i, x.* FROM generate_series(1, 30) i, media_reco.similar_items('cosine_%S', i, 5) x},
	'similar_items');
same(q{SELECT u, x.* FROM generate_series(1, 20) u,
              LATERAL (SELECT item_id FROM media_reco.recommend('cosine_%S', u, 2)) r,
              media_reco.explain_recommendation('cosine_%S', u, r.item_id) x},
	'explain_recommendation');
same(q{SELECT * FROM media_reco.recommend_all('cosine_%S', 5)}, 'recommend_all');
same(q{SELECT * FROM media_reco.recommend_all('jaccard_%S', 5, ARRAY[1, 7, 9, 400]::bigint[])},
	'recommend_all for some users');
same(q{SELECT * FROM media_reco.popular_items('cosine_%S', 20)}, 'popular_items');
same(q{SELECT * FROM media_reco.popular_items('dec_%S', 20, '2025-06-01')}, 'popular_items since');
same(q{SELECT u, x.* FROM generate_series(1, 40) u, media_reco.similar_users('cosine_%S', u, 5) x},
	'similar_users');
same(q{SELECT u, x.* FROM generate_series(1, 40) u, media_reco.recommend_user_based('cosine_%S', u, 5) x},
	'recommend_user_based');

# --- split_interactions and evaluate ---------------------------------------
each_src(q{SELECT media_reco.split_interactions('ev_%S', 'tr_%S', 'te_%S', 'random', 0.25, 3);
SELECT media_reco.split_interactions('ev_%S', 'trt_%S', 'tet_%S', 'temporal', 0.3, 3, 'watched_at')});
same(q{SELECT * FROM tr_%S}, 'split_interactions random: train rows');
same(q{SELECT * FROM te_%S}, 'split_interactions random: test rows');
same(q{SELECT * FROM trt_%S}, 'split_interactions temporal: train rows');
same(q{SELECT * FROM tet_%S}, 'split_interactions temporal: test rows');
# the split of the distributed (reference) source distributed (made reference) in turn
sql(q{SELECT create_distributed_table('tr_dist', 'user_id'); SELECT create_distributed_table('te_dist', 'user_id');
SELECT create_reference_table('tr_ref'); SELECT create_reference_table('te_ref');});
each_src(q{SELECT media_reco.create_recommender('evc_%S', 'tr_%S', 'user_id', 'item_id', 'plays', 'cosine', 20);
SELECT media_reco.refresh_neighbors('evc_%S')});
same(q{SELECT * FROM media_reco.evaluate('evc_%S', 'te_%S', 10)}, 'evaluate');

# --- forests and networks ---------------------------------------------------
each_src(q{SELECT media_reco.train_forest('rf_%S', 'f_%S', 'label', ARRAY['n', 'r', 'p', 'd'],
                                 '{"n_trees": 20, "seed": 3}')});
same(q{SELECT md5(model), classes, feature_names, inputs, metrics - 'seconds' FROM media_reco.models WHERE name = 'rf_%S'},
	'train_forest: the model bytes and metrics');
same(q{SELECT user_id, media_reco.predict('rf_%S', ARRAY[n, r, p, d]) FROM f_local}, 'train_forest: predictions');
each_src(q{SELECT media_reco.train_mlp('mlp_%S', 'f_%S', 'label', ARRAY['n', 'r', 'p', 'd'],
                              '{"hidden": [8], "epochs": 20, "seed": 3}')});
same(q{SELECT md5(model), classes, inputs FROM media_reco.models WHERE name = 'mlp_%S'},
	'train_mlp: the model bytes');

# --- implicit ALS -----------------------------------------------------------
each_src(q{SELECT media_reco.train_als('als_%S', 'ev_%S', 'user_id', 'item_id', 'plays',
                              '{"factors": 8, "iterations": 4, "seed": 5}')});
same(q{SELECT users, items, factors, iterations, loss, train_loss FROM media_reco.als_models WHERE name = 'als_%S'},
	'train_als: the registry row');
same(q{SELECT item_id, factors FROM media_reco.item_factors WHERE model = 'als_%S'}, 'train_als: item factors');
same(q{SELECT user_id, factors FROM media_reco.user_factors WHERE model = 'als_%S'}, 'train_als: user factors');
same(q{SELECT u, x.* FROM generate_series(1, 60) u, media_reco.recommend_als('als_%S', u, 10) x},
	'recommend_als');
same(q{SELECT u, x.* FROM generate_series(1, 30) u,
              media_reco.recommend_als('als_%S', u, 10, recalculate => true) x},
	'recommend_als recalculated from the history');
same(q{SELECT u, media_reco.als_user_vector('als_%S', u, true) FROM generate_series(1, 30) u},
	'als_user_vector recalculated');
same(q{SELECT * FROM media_reco.recommend_all_als('als_%S', 5)}, 'recommend_all_als');
each_src(q{SELECT media_reco.train_als('alstr_%S', 'tr_%S', 'user_id', 'item_id', 'plays',
                              '{"factors": 8, "iterations": 4, "seed": 5}')});
same(q{SELECT * FROM media_reco.evaluate_als('alstr_%S', 'te_%S', 10)}, 'evaluate_als');

# ===========================================================================
# Part 2: serving on the cluster
# ===========================================================================
my $setup = sql(q{SELECT string_agg(relation::text || ' ' || citus_table_type, ', ' ORDER BY 1)
                  FROM media_reco.citus_setup()});
is($setup, 'media_reco.als_models reference, media_reco.item_factors reference, media_reco.models reference, '
	  . 'media_reco.neighbor_store reference, media_reco.recommenders reference, '
	  . 'media_reco.refresh_history reference, media_reco.user_factors reference',
	'citus_setup: media_reco\'s seven tables are reference tables');
is(sql(q{SELECT count(*) FROM media_reco.citus_setup()}), '7', 'citus_setup again: nothing more to do');
is(sql(q{SELECT count(*) FROM pg_dist_partition WHERE logicalrelid::text LIKE 'media_reco.%'}, $w2), '7',
	'the workers know them as Citus tables');
is(sql(q{SELECT count(*) FROM media_reco.recommenders}, $w1), sql(q{SELECT count(*) FROM media_reco.recommenders}),
	'the registry rows are readable on a worker');
is(sql(q{SELECT pg_relation_size('media_reco.neighbor_store')}), '0',
	"the coordinator's neighbour-store shell was emptied (its rows are in the shards)");
is(sql(q{SELECT conname FROM pg_constraint WHERE conrelid = 'media_reco.neighbor_store'::regclass AND contype = 'f'}),
	'neighbor_store_recommender_id_fkey', 'the foreign key is back');

# served from the reference tables: the same as from the local source before
my $before = rows(q{SELECT u, x.* FROM generate_series(1, 80) u, media_reco.recommend('cosine_local', u, 10) x});
is(rows(q{SELECT u, x.* FROM generate_series(1, 80) u, media_reco.recommend('cosine_dist', u, 10) x}), $before,
	'recommend after citus_setup (neighbour lists read through the planner) as the local source');
sql(q{SELECT media_reco.create_recommender('srv', 'ev_dist', 'user_id', 'item_id', 'plays', 'cosine', 20);
SELECT media_reco.refresh_neighbors('srv')});
is(rows(q{SELECT u, x.* FROM generate_series(1, 80) u, media_reco.recommend('srv', u, 10) x}), $before,
	'a refresh after citus_setup (written through the planner into the reference table) as the local source');
is(rows(q{SELECT u, x.* FROM generate_series(1, 80) u, media_reco.recommend('srv', u, 10) x}, $w1), $before,
	'recommend on a worker as on the coordinator');
sql(q{SELECT media_reco.drop_recommender('srv')});
is(sql(q{SELECT count(*) FROM media_reco.neighbor_store n WHERE NOT EXISTS (
         SELECT 1 FROM media_reco.recommenders r WHERE r.id = n.recommender_id)}), '0',
	'drop_recommender: the cascade reached the reference shards');
sql(q{SELECT media_reco.train_als('als_srv', 'ev_dist', 'user_id', 'item_id', 'plays',
                              '{"factors": 8, "iterations": 4, "seed": 5}')});
is(rows(q{SELECT u, x.* FROM generate_series(1, 60) u, media_reco.recommend_als('als_srv', u, 10) x}),
	rows(q{SELECT u, x.* FROM generate_series(1, 60) u, media_reco.recommend_als('als_local', u, 10) x}),
	'train_als after citus_setup (factors written through the planner) as the local source');

# larger writes through the planner after citus_setup: more rows than one batched INSERT holds
# (500 neighbour rows, 833 factor rows a statement), so full batches and the last short one
sql(q{CREATE TABLE ev_big AS SELECT user_id, item_id FROM media_reco.synthetic_interactions(2000, 1300, 30000, 11);
SELECT create_distributed_table('ev_big', 'user_id');
SELECT media_reco.create_recommender('big', 'ev_big', k => 10);
SELECT media_reco.refresh_neighbors('big');
SELECT media_reco.train_als('als_big', 'ev_big', options => '{"factors": 4, "iterations": 2, "cg_steps": 0}');});
cmp_ok(sql(q{SELECT count(*) FROM media_reco.item_neighbors WHERE recommender = 'big'}), '>', 0,
	'the big refresh stored lists');
cmp_ok(sql(q{SELECT count(DISTINCT item_id) FROM media_reco.item_neighbors WHERE recommender = 'big'}), '>', 1000,
	'more than two batches of neighbour rows');
is(rows(q{SELECT item_id, neighbor_id, similarity, support, rank FROM media_reco.item_neighbors WHERE recommender = 'big'}),
	rows(q{SELECT item_id, neighbor_id, similarity, support, rank FROM media_reco.item_similarity('ev_big', k => 10)}),
	'every batched neighbour row is the list computed for its item');
is(sql(q{SELECT count(*) || ' ' || count(DISTINCT user_id) FROM media_reco.user_factors WHERE model = 'als_big'}),
	sql(q{SELECT count(DISTINCT user_id) || ' ' || count(DISTINCT user_id) FROM ev_big}),
	'one factor row per user, over more than two batches');
# exact solves: each stored x_u is the solve of its user's history against the stored item factors
is(sql(q{SELECT count(*) FROM media_reco.user_factors f
         WHERE (SELECT max(abs(a - b) / (abs(b) + 1e-3))
                  FROM unnest(f.factors::float8[], media_reco.als_user_vector('als_big', f.user_id, true)) AS v(a, b))
               > 1e-5 AND f.model = 'als_big'}), '0',
	'every batched factor row belongs to its user');

# the history query of recommend() goes to one shard: the plan, and the log
my $hist = q{SELECT (item_id)::pg_catalog.int8, (plays)::pg_catalog.float8 FROM public.ev_dist
              WHERE user_id OPERATOR(pg_catalog.=) 42 AND user_id IS NOT NULL AND item_id IS NOT NULL
                AND plays IS NOT NULL};
my $plan = sql("EXPLAIN (COSTS OFF) $hist");
note($plan);
like($plan, qr/Custom Scan \(Citus Adaptive\).*Task Count: 1\b/s, 'the history query is a one-task plan');
like($plan, qr/Index Only Scan|Index Scan|Bitmap/, 'reading the user\'s index on that shard');
my ($rc, $out, $err) = $coord->psql('postgres', q{SET citus.log_remote_commands = on;
SET client_min_messages = log; SELECT count(*) FROM media_reco.recommend('cosine_dist', 42, 10)});
my %shards = map { $_ => 1 } ($err =~ /issuing SELECT .*? FROM public\.(ev_dist_\d+)/g);
is(scalar(keys %shards), 1, 'recommend() sent its history query to one shard: ' . join(',', keys %shards));
my $shard_of_42 = sql(q{SELECT 'ev_dist_' || get_shard_id_for_distribution_column('ev_dist', 42)});
ok($shards{$shard_of_42}, "the shard of user 42 ($shard_of_42)");

# predict over a distributed table runs on the workers
sql(q{CREATE TABLE subscribers AS SELECT user_id AS id, n, r, p, d, label FROM f_local;
SELECT create_distributed_table('subscribers', 'id');
SELECT media_reco.train_forest('churn', 'subscribers', 'label', ARRAY['n', 'r', 'p', 'd'],
                               '{"n_trees": 20, "seed": 3}');
CREATE TABLE subscribers_local AS SELECT * FROM subscribers;});
is(sql(q{SELECT md5(model) FROM media_reco.models WHERE name = 'churn'}),
	sql(q{SELECT md5(model) FROM media_reco.models WHERE name = 'rf_local'}),
	'train_forest on the distributed table after citus_setup as on the local one');
my $pplan = sql(q{EXPLAIN (VERBOSE, COSTS OFF) SELECT id, media_reco.predict('churn', s) FROM subscribers s});
like($pplan, qr/Custom Scan \(Citus Adaptive\).*Task Count: 6\b/s, 'predict over subscribers: six tasks');
like($pplan, qr/Query: SELECT id, media_reco\.predict\('churn'::text, s\.\*\) AS predict FROM public\.subscribers_\d+ s/,
	'each task calls predict on the worker, over its shard');
note($pplan);
($rc, $out, $err) = $coord->psql('postgres', q{SET citus.log_remote_commands = on;
SET client_min_messages = log; SELECT id, media_reco.predict('churn', s) FROM subscribers s});
my %pn = map { $_ => 1 } ($err =~ /issuing SELECT id, media_reco\.predict[^\n]*\n[^\n]*on server \S*?:(\d+)/g);
is(join(',', sort keys %pn), join(',', sort ($w1->port, $w2->port)), 'predict ran on both workers');
is(rows(q{SELECT id, media_reco.predict('churn', s) FROM subscribers s}),
	rows(q{SELECT id, media_reco.predict('churn', s) FROM subscribers_local s}),
	'the pushed-down predictions are those of a local evaluation');
# the other per-row model functions take the same model lookup: pushed down, the same answers
for my $q ("SELECT id, media_reco.predict_proba('churn', s) FROM subscribers s",
	"SELECT id, media_reco.top_classes('churn', ARRAY[n, r, p, d]::float8[], 2) FROM subscribers s",
	"SELECT id, e.feature, e.contribution, e.rank FROM subscribers s, media_reco.explain_prediction('churn', s) e")
{
	my ($name) = $q =~ /media_reco\.(\w+)/;
	my $fplan = sql("EXPLAIN (VERBOSE, COSTS OFF) $q");
	like($fplan, qr/Task Count: 6\b/, "$name over subscribers: six tasks");
	like($fplan, qr/Query: SELECT (?=[^\n]*media_reco\.$name\()(?=[^\n]*FROM [^\n]*public\.subscribers_\d+ s)/,
		"$name runs on the workers, over each shard");
	(my $local = $q) =~ s/FROM subscribers s/FROM subscribers_local s/;
	is(rows($q), rows($local), "$name pushed down answers as a local evaluation");
}

# --- part 3: the refresh's pair sums on the workers --------------------------
# cosine, jaccard and conditional over a table distributed by user: each shard's
# pair sums are computed on its worker (media_reco.pair_sums pushed down), merged
# on the coordinator; the lists must be the single-node lists bit for bit (float8
# text is exact).  Everything else falls back to reading the rows, saying why.
sub history
{
	my ($name, $key) = @_;
	return sql(qq{SELECT h.parameters->'citus'->>'$key' FROM media_reco.refresh_history h
	               WHERE h.recommender = '$name' ORDER BY h.id DESC LIMIT 1});
}
for my $name (qw(cosine_dist jaccard_dist conditional_dist unw_dist adjusted_cosine_dist pearson_dist bm25_dist))
{
	is(history($name, 'pushed_down'), 'true', "$name (refreshed above): pair sums on the workers");
	is(history($name, 'states'), '6', "$name: six shard states merged");
	my $off = $name eq 'adjusted_cosine_dist' || $name eq 'bm25_dist' || $name eq 'pearson_dist';
	is(history($name, 'fixed_point'), $off ? 'true' : 'false',
		$off ? "$name: centred weights or BM25 terms off the grid, merged in fixed point"
		: "$name: on the weights' grid, merged in units");
}
ok(history('pearson_dist', 'first_pass_seconds') > 0, 'pearson: its first pass (the items\' sums) timed in the history');
is(sql(q{SELECT count(*) FROM media_reco.refresh_history h, jsonb_object_keys(h.parameters->'citus'->'node_cpu_seconds') k
          WHERE h.recommender = 'cosine_dist' AND h.id = (SELECT max(id) FROM media_reco.refresh_history WHERE recommender = 'cosine_dist')}),
	'2', 'cosine_dist: CPU seconds reported for both workers');
ok(history('bm25_dist', 'first_pass_seconds') > 0, 'bm25: its first pass (the users\' lengths) timed in the history');
is(history('dec_dist', 'pushed_down'), 'true', 'a decayed source: the workers decay its rows (media_reco.decayed_weight) and sum them');
like(history('cosine_ref', 'why'), qr/reference table/, 'a reference table reads the rows, saying why');
is(history('cosine_local', 'pushed_down'), '', 'a local source records nothing about Citus');
# a refresh after citus_setup (sequential reads, one connection per worker) still pushes down
sql(q{SELECT media_reco.refresh_neighbors('cosine_dist')});
is(history('cosine_dist', 'pushed_down'), 'true', 'after citus_setup: pair sums on the workers');
same(q{SELECT n.item_id, n.neighbor_ids, n.similarities, n.supports
         FROM media_reco.neighbor_store n JOIN media_reco.recommenders r ON r.id = n.recommender_id
        WHERE r.name = 'cosine_%S'}, 'after citus_setup: the pushed-down lists');

# weights on a dyadic grid (halves, negatives, zeros) with many duplicate rows,
# and weights off any grid (logs, in fixed point): pushed down and exact; weights
# spanning 2^30 : 1 within items: read with a NOTICE
sql(q{
CREATE TABLE ps_local AS
SELECT (1 + (g * 7919) % 300)::bigint AS user_id,
       (1 + floor(120 * power(((g * 104729) % 1000) / 1000.0, 2)))::bigint AS item_id,
       ((((g * 31) % 11) - 3) * 0.5)::float8 AS w_half,
       ((g * 13) % 7 + 1)::float8 AS w_int,
       ln(2 + g % 17)::float8 AS w_log,
       CASE WHEN (g * 7919) % 300 % 2 = 0 THEN ln(2 + g % 17) ELSE ln(2 + g % 17) / 2^30 END::float8 AS w_wide
  FROM generate_series(1, 12000) g;
CREATE TABLE ps_dist (LIKE ps_local);
SELECT create_distributed_table('ps_dist', 'user_id');
INSERT INTO ps_dist SELECT * FROM ps_local;
CREATE TABLE ps_item (LIKE ps_local);
SELECT create_distributed_table('ps_item', 'item_id');
INSERT INTO ps_item SELECT * FROM ps_local;
});
ok(sql(q{SELECT count(*) > 12000 - count(DISTINCT (user_id, item_id)) AND count(*) > count(DISTINCT (user_id, item_id))
           FROM ps_local}) eq 't', 'ps: duplicate (user, item) rows');
sub notices
{
	my ($q) = @_;
	my ($rc, $out, $err) = $coord->psql('postgres', $q);
	die "$q: $err" if $rc != 0;
	return ($out, $err);
}
my @ps_cases = (
	[q{weight_col => 'w_half', metric => 'cosine', k => 10}, 'cosine, half weights'],
	[q{weight_col => 'w_half', metric => 'cosine', k => 7, min_support => 3, shrinkage => 5}, 'cosine, half weights, min_support and shrinkage'],
	[q{weight_col => 'w_int', metric => 'cosine', k => 500}, 'cosine, integer weights, k beyond the items'],
	[q{weight_col => NULL, metric => 'cosine', k => 10}, 'cosine, unweighted'],
	[q{weight_col => 'w_log', metric => 'cosine', k => 10}, 'cosine, log weights (fixed point)'],
	[q{weight_col => 'w_log', metric => 'cosine', k => 7, min_support => 3, shrinkage => 5}, 'cosine, log weights, min_support and shrinkage'],
	[q{weight_col => 'w_log', metric => 'jaccard', k => 10, min_support => 2}, 'jaccard'],
	[q{weight_col => 'w_half', metric => 'conditional', k => 10, shrinkage => 2.5}, 'conditional'],
	[q{weight_col => 'w_int', metric => 'adjusted_cosine', k => 10}, 'adjusted cosine, ratings (centred on the workers)'],
	[q{weight_col => 'w_half', metric => 'adjusted_cosine', k => 7, min_support => 3, shrinkage => 5}, 'adjusted cosine, min_support and shrinkage'],
	[q{weight_col => 'w_log', metric => 'adjusted_cosine', k => 10}, 'adjusted cosine, log weights'],
	[q{weight_col => 'w_int', metric => 'bm25', k => 10}, 'bm25, ratings (two passes)'],
	[q{weight_col => 'w_log', metric => 'bm25', k => 7, min_support => 2, shrinkage => 3, bm25_k1 => 1.2, bm25_b => 0.75}, 'bm25, log weights, other options'],
	[q{weight_col => NULL, metric => 'bm25', k => 10, bm25_k1 => 0}, 'bm25, unweighted, K1 = 0'],
	[q{weight_col => 'w_int', metric => 'pearson', k => 10}, 'pearson, ratings (two passes: the items\' means, then centred on the workers)'],
	[q{weight_col => 'w_half', metric => 'pearson', k => 7, min_support => 3, shrinkage => 5}, 'pearson, min_support and shrinkage'],
	[q{weight_col => 'w_log', metric => 'pearson', k => 500}, 'pearson, log weights, k beyond the items']);
for my $c (@ps_cases)
{
	my ($args, $what) = @$c;
	my ($want) = notices(qq{SELECT md5(string_agg(x::text, ',' ORDER BY item_id, rank)) FROM media_reco.item_similarity('ps_local', $args) x});
	my ($got, $err) = notices(qq{SELECT md5(string_agg(x::text, ',' ORDER BY item_id, rank)) FROM media_reco.item_similarity('ps_dist', $args) x});
	is($got, $want, "pair sums pushed down, $what: bit for bit the single-node lists");
	unlike($err, qr/computed on the coordinator/, "$what: no fallback");
	my ($item, $ierr) = notices(qq{SELECT md5(string_agg(x::text, ',' ORDER BY item_id, rank)) FROM media_reco.item_similarity('ps_item', $args) x});
	is($item, $want, "$what, distributed by item: read on the coordinator, the same lists");
	like($ierr, qr/distributed by "item_id", not by its user column "user_id"/, "$what, distributed by item: the NOTICE says why");
}
my ($want_wide) = notices(q{SELECT md5(string_agg(x::text, ',' ORDER BY item_id, rank)) FROM media_reco.item_similarity('ps_local', weight_col => 'w_wide', k => 10) x});
my ($got_wide, $err_wide) = notices(q{SELECT md5(string_agg(x::text, ',' ORDER BY item_id, rank)) FROM media_reco.item_similarity('ps_dist', weight_col => 'w_wide', k => 10) x});
is($got_wide, $want_wide, 'cosine over weights spanning 2^30 : 1: the single-node lists');
like($err_wide, qr/NOTICE:  media_reco: the pair sums of public.ps_dist are computed on the coordinator from its rows\nDETAIL:  Not on the workers: item \d+'s weights span 2\^22 : 1 or more/,
	'cosine over weights spanning 2^30 : 1: read on the coordinator, saying why');
# a refresh over log weights: pushed down, merged in fixed point, the lists item_similarity gives
# over the local table (after citus_setup() a recommender's source must exist on every node)
sql(q{SELECT media_reco.create_recommender('log_dist', 'ps_dist', weight_col => 'w_log', k => 10)});
sql(q{SET media_reco.citus_pair_sums = on; SELECT media_reco.refresh_neighbors('log_dist')});
is(history('log_dist', 'pushed_down'), 'true', 'log weights: the refresh pushed down');
is(history('log_dist', 'fixed_point'), 'true', 'log weights: merged in fixed point');
is(sql(q{SELECT md5(string_agg(x::text, ',' ORDER BY x.item_id, x.rank)) FROM (
           SELECT n.item_id, u.neighbor_id, u.similarity, u.support, u.rank::int
             FROM media_reco.neighbor_store n JOIN media_reco.recommenders r ON r.id = n.recommender_id,
                  unnest(n.neighbor_ids, n.similarities, n.supports) WITH ORDINALITY u(neighbor_id, similarity, support, rank)
            WHERE r.name = 'log_dist') x}),
	sql(q{SELECT md5(string_agg(x::text, ',' ORDER BY item_id, rank))
	        FROM media_reco.item_similarity('ps_local', weight_col => 'w_log', k => 10) x}),
	'log weights: the stored lists are the local source\'s, bit for bit');
# an adjusted-cosine refresh: each worker centres its users' weights, the merge is in fixed
# point (the means leave off-grid residues), the lists are the local source's
sql(q{SELECT media_reco.create_recommender('adj_dist', 'ps_dist', weight_col => 'w_int', metric => 'adjusted_cosine', k => 10)});
sql(q{SET media_reco.citus_pair_sums = on; SELECT media_reco.refresh_neighbors('adj_dist')});
is(history('adj_dist', 'pushed_down'), 'true', 'adjusted cosine: the refresh pushed down');
is(history('adj_dist', 'fixed_point'), 'true', 'adjusted cosine: merged in fixed point');
is(sql(q{SELECT md5(string_agg(item_id || ':' || neighbor_id || '=' || similarity || '/' || support, ',' ORDER BY item_id, rank))
           FROM media_reco.item_neighbors WHERE recommender = 'adj_dist'}),
	sql(q{SELECT md5(string_agg(item_id || ':' || neighbor_id || '=' || similarity || '/' || support, ',' ORDER BY item_id, rank))
           FROM media_reco.item_similarity('ps_local', weight_col => 'w_int', metric => 'adjusted_cosine', k => 10)}),
	'adjusted cosine: the stored lists are the local source\'s, bit for bit');
ok(sql(q{SELECT count(*) > 100 FROM media_reco.item_neighbors WHERE recommender = 'adj_dist'}) eq 't',
	'adjusted cosine: the lists are not empty');
# a Pearson refresh: the items' means from a first pass, then each worker centres its rows on
# them; the merge checks the means against the states' own figures; the local source's lists
sql(q{SELECT media_reco.create_recommender('pear_dist', 'ps_dist', weight_col => 'w_log', metric => 'pearson', k => 10)});
sql(q{SET media_reco.citus_pair_sums = on; SELECT media_reco.refresh_neighbors('pear_dist')});
is(history('pear_dist', 'pushed_down'), 'true', 'pearson: the refresh pushed down');
is(history('pear_dist', 'fixed_point'), 'true', 'pearson: merged in fixed point');
is(sql(q{SELECT md5(string_agg(item_id || ':' || neighbor_id || '=' || similarity || '/' || support, ',' ORDER BY item_id, rank))
           FROM media_reco.item_neighbors WHERE recommender = 'pear_dist'}),
	sql(q{SELECT md5(string_agg(item_id || ':' || neighbor_id || '=' || similarity || '/' || support, ',' ORDER BY item_id, rank))
           FROM media_reco.item_similarity('ps_local', weight_col => 'w_log', metric => 'pearson', k => 10)}),
	'pearson: the stored lists are the local source\'s, bit for bit');
ok(sql(q{SELECT count(*) > 100 FROM media_reco.item_neighbors WHERE recommender = 'pear_dist'}) eq 't',
	'pearson: the lists are not empty');
# time decay on the workers: each shard decays its rows with the refresh's now() and half-life
# (media_reco.decayed_weight), so the stored lists are those of the same rows in a reference table
# (read on the coordinator, as a local table; after citus_setup() a source must exist on every node)
# refreshed in the same transaction; a timestamp without time zone (local time in the coordinator's
# TimeZone) reads the rows
sql(q{
CREATE TABLE tz_local AS
SELECT user_id, item_id, w_log,
       timestamptz '2026-01-01 00:00:00+00' + ((user_id * 37 + item_id * 11) % 2000) * interval '1 hour 7 seconds' AS t,
       timestamp '2026-01-01 00:00:00' + ((user_id * 37 + item_id * 11) % 2000) * interval '1 hour 7 seconds' AS t_plain
  FROM ps_local;
CREATE TABLE tz_dist (LIKE tz_local);
SELECT create_distributed_table('tz_dist', 'user_id');
INSERT INTO tz_dist SELECT * FROM tz_local;
CREATE TABLE tz_ref (LIKE tz_local);
SELECT create_reference_table('tz_ref');
INSERT INTO tz_ref SELECT * FROM tz_local;
SELECT media_reco.create_recommender('tz_' || s, 'tz_' || s, weight_col => 'w_log', metric => m, k => 10,
                                     time_col => 't', half_life => '20 days')
  FROM unnest(ARRAY['ref', 'dist']) s, unnest(ARRAY['cosine']) m;
SELECT media_reco.create_recommender('tzp_' || s, 'tz_' || s, weight_col => 'w_log', metric => 'pearson', k => 10,
                                     time_col => 't', half_life => '7 days 3 hours')
  FROM unnest(ARRAY['ref', 'dist']) s;
SELECT media_reco.create_recommender('tsp_' || s, 'tz_' || s, weight_col => 'w_log', k => 10,
                                     time_col => 't_plain', half_life => '20 days')
  FROM unnest(ARRAY['ref', 'dist']) s;
});
sql(q{SET media_reco.citus_pair_sums = on; SET citus.multi_shard_modify_mode = sequential;
BEGIN;
SELECT media_reco.refresh_neighbors(r) FROM unnest(ARRAY['tz_ref', 'tz_dist', 'tzp_ref', 'tzp_dist', 'tsp_ref', 'tsp_dist']) r;
COMMIT;});
for my $r (qw(tz tzp tsp))
{
	my $lists = q{SELECT md5(string_agg(item_id || ':' || neighbor_id || '=' || similarity || '/' || support, ',' ORDER BY item_id, rank))
	                FROM media_reco.item_neighbors WHERE recommender = '%s'};
	is(sql(sprintf($lists, "${r}_dist")), sql(sprintf($lists, "${r}_ref")), "decay, $r: the stored lists are those read on the coordinator, bit for bit");
	ok(sql(qq{SELECT count(*) > 100 FROM media_reco.item_neighbors WHERE recommender = '${r}_dist'}) eq 't', "decay, $r: the lists are not empty");
}
is(history('tz_dist', 'pushed_down'), 'true', 'decay over a timestamptz: pushed down');
is(history('tz_dist', 'fixed_point'), 'true', 'decay: decayed weights merged in fixed point');
is(history('tzp_dist', 'pushed_down'), 'true', 'decayed pearson: pushed down in two passes');
like(history('tsp_dist', 'why'), qr/time column "t_plain" is a timestamp without time zone/,
	'decay over a timestamp without time zone: the rows, saying why');
# auto: times over 2,000 one-hour half-lives would make the merge refuse the items: the rows at once
sql(q{SELECT media_reco.create_recommender('tzh_dist', 'tz_dist', weight_col => 'w_log', k => 10,
                                           time_col => 't', half_life => '1 hour')});
sql(q{SET media_reco.citus_pair_sums = auto; SELECT media_reco.refresh_neighbors('tzh_dist')});
like(history('tzh_dist', 'why'), qr/the times span 2\d\d\d half-lives: decayed weights spanning 2\^22 : 1 or more/,
	'auto, decay over 2,000 half-lives: the rows, saying why, before any pair sums');
# auto's estimate counts a fixed-point entry as 16 bytes (a 128-bit varint), a units entry as 4
for my $c ([q{weight_col => 'w_half'}, 'cosine, half weights', 3, 4.7],
	[q{weight_col => 'w_log'}, 'cosine, log weights', 15, 17.5],
	[q{weight_col => 'w_int', metric => 'adjusted_cosine'}, 'adjusted cosine', 15, 17.5],
	[q{weight_col => 'w_int', metric => 'bm25'}, 'bm25', 15, 17.5],
	[q{weight_col => 'w_int', metric => 'pearson'}, 'pearson', 15, 17.5])
{
	my ($args, $what, $lo, $hi) = @$c;
	my (undef, $err) = notices(qq{SET media_reco.citus_pair_sums = auto;
SELECT count(*) FROM media_reco.item_similarity('ps_dist', $args, k => 10)});
	if ($err =~ /up to (\d+) entries, about ([\d.]+) MB/)
	{
		my $per = $2 * 1e6 / $1;
		ok($per >= $lo && $per <= $hi, "auto, $what: estimated at $per bytes an entry (between $lo and $hi)");
	}
	else
	{
		fail("auto, $what: the rows are read with an estimate in the NOTICE (got: $err)");
	}
}
# auto: the pair sums when they would move fewer bytes than the rows (long histories over
# few items), else the rows, saying why
sql(q{CREATE TABLE dense_local AS SELECT u::bigint AS user_id, i::bigint AS item_id, ((u + i) % 4 + 1)::float8 AS w
        FROM generate_series(1, 2000) u, generate_series(1, 20) i WHERE (u * 7 + i) % 5 <> 0;
CREATE TABLE dense_dist (LIKE dense_local);
SELECT create_distributed_table('dense_dist', 'user_id');
INSERT INTO dense_dist SELECT * FROM dense_local;});
my ($want_dense) = notices(q{SELECT md5(string_agg(x::text, ',' ORDER BY item_id, rank)) FROM media_reco.item_similarity('dense_local', weight_col => 'w', k => 5) x});
my ($got_dense, $err_dense) = notices(q{SET media_reco.citus_pair_sums = auto;
SELECT md5(string_agg(x::text, ',' ORDER BY item_id, rank)) FROM media_reco.item_similarity('dense_dist', weight_col => 'w', k => 5) x});
is($got_dense, $want_dense, 'auto, long histories over 20 items: the single-node lists');
unlike($err_dense, qr/computed on the coordinator/, 'auto, long histories over 20 items: the pair sums on the workers');
my (undef, $err_dense_r) = notices(q{SET media_reco.citus_pair_sums = auto;
SELECT media_reco.create_recommender('dense_r', 'dense_dist', weight_col => 'w', k => 5);
SELECT media_reco.refresh_neighbors('dense_r');});
unlike($err_dense_r, qr/computed on the coordinator/, 'auto: a refresh after citus_setup estimates, then pushes down');
is(history('dense_r', 'pushed_down'), 'true', 'auto: the refresh history says pushed down');
is(sql(q{SELECT md5(string_agg(item_id || ':' || neighbor_id || '=' || similarity || '/' || support, ',' ORDER BY item_id, rank))
           FROM media_reco.item_neighbors WHERE recommender = 'dense_r'}),
	sql(q{SELECT md5(string_agg(item_id || ':' || neighbor_id || '=' || similarity || '/' || support, ',' ORDER BY item_id, rank))
           FROM media_reco.item_similarity('dense_local', weight_col => 'w', k => 5)}), 'auto: its stored lists are the single-node lists');
my ($got_sparse, $err_sparse) = notices(q{SET media_reco.citus_pair_sums = auto;
SELECT md5(string_agg(x::text, ',' ORDER BY item_id, rank)) FROM media_reco.item_similarity('ps_dist', weight_col => 'w_half', k => 10) x});
like($err_sparse, qr/Not on the workers: media_reco.citus_pair_sums is auto and the pair sums would move more bytes than the rows \(up to \d+ entries/,
	'auto, short histories over 120 items: the rows, saying why');
my (undef, $err_off) = notices(q{SET media_reco.citus_pair_sums = off;
SELECT count(*) FROM media_reco.item_similarity('ps_dist', weight_col => 'w_half', k => 10)});
like($err_off, qr/Not on the workers: media_reco.citus_pair_sums is off/, 'media_reco.citus_pair_sums = off reads the rows');

# a NaN weight on a worker: the single-node error, and the stored lists stay
sql(q{CREATE TABLE nan_dist (LIKE ps_local);
SELECT create_distributed_table('nan_dist', 'user_id');
INSERT INTO nan_dist SELECT * FROM ps_local;
SELECT media_reco.create_recommender('nan_r', 'nan_dist', weight_col => 'w_half', k => 10);
SELECT media_reco.refresh_neighbors('nan_r');
INSERT INTO nan_dist VALUES (77, 5, 'NaN', 1, 1);});
my $nan_before = sql(q{SELECT md5(string_agg(n::text, ',' ORDER BY item_id)) FROM media_reco.item_neighbors n WHERE recommender = 'nan_r'});
my ($rc3, $out3, $err3) = $coord->psql('postgres', q{\set VERBOSITY verbose
SELECT media_reco.refresh_neighbors('nan_r')});
like($err3, qr/22023: weight column "w_half" contains a non-finite value \(NaN\)/, 'a NaN weight on a worker: 22023 naming the column');
is(sql(q{SELECT md5(string_agg(n::text, ',' ORDER BY item_id)) FROM media_reco.item_neighbors n WHERE recommender = 'nan_r'}),
	$nan_before, 'the failed refresh left the stored lists as they were');

# the coordinator holds every shard's state: beyond maintenance_work_mem, 54000
sql(q{CREATE TABLE big_dist AS SELECT u::bigint AS user_id, i::bigint AS item_id
        FROM generate_series(1, 600) u, generate_series(1, 400) i WHERE (u * i) % 3 = 0;
SELECT create_distributed_table('big_dist', 'user_id');
SELECT media_reco.create_recommender('big_r', 'big_dist', metric => 'jaccard', k => 5);
SELECT media_reco.refresh_neighbors('big_r');});
is(history('big_r', 'pushed_down'), 'true', 'big_dist: pushed down');
my $big_state = history('big_r', 'state_bytes');
ok($big_state > 1024 * 1024, "big_dist: the states hold $big_state bytes, more than 1 MB");
my $big_before = sql(q{SELECT md5(string_agg(n::text, ',' ORDER BY item_id)) FROM media_reco.item_neighbors n WHERE recommender = 'big_r'});
my ($rc4, $out4, $err4) = $coord->psql('postgres', q{\set VERBOSITY verbose
SET maintenance_work_mem = '1MB';
SELECT media_reco.refresh_neighbors('big_r')});
like($err4, qr/54000: partial pair sums of the shards do not fit in maintenance_work_mem/,
	'states beyond the coordinator\'s maintenance_work_mem: 54000');
is(sql(q{SELECT md5(string_agg(n::text, ',' ORDER BY item_id)) FROM media_reco.item_neighbors n WHERE recommender = 'big_r'}),
	$big_before, 'the failed refresh left the stored lists as they were');
is(sql(q{SELECT count(*) FROM media_reco.refresh_history WHERE recommender = 'big_r'}),
	'1', 'and recorded no history');

# dropping a distributed source after citus_setup: Citus drops its shells on the workers too,
# where media_reco's event triggers must leave the reference tables to the coordinator's
# trigger (before 0.7.0 the DROP failed: "cannot execute a distributed query from a query on a shard")
sql(q{CREATE TABLE drop_dist (LIKE ps_local);
SELECT create_distributed_table('drop_dist', 'user_id');
INSERT INTO drop_dist SELECT * FROM ps_local WHERE w_int > 0;
SELECT media_reco.create_recommender('drop_r', 'drop_dist', weight_col => 'w_int', k => 5);
SELECT media_reco.refresh_neighbors('drop_r');
SELECT 1 FROM media_reco.train_als('drop_a', 'drop_dist', weight_col => 'w_int', options => '{"factors": 4, "iterations": 2}');
DROP TABLE drop_dist;});
for my $node ([$coord, 'the coordinator'], [$w1, 'a worker'])
{
	is(sql(q{SELECT coalesce(source::text, 'NULL') || ' ' || dropped_source FROM media_reco.recommenders WHERE name = 'drop_r'
	         UNION ALL
	         SELECT coalesce(source::text, 'NULL') || ' ' || dropped_source FROM media_reco.als_models WHERE name = 'drop_a'}, $node->[0]),
		"NULL public.drop_dist\nNULL public.drop_dist", "DROP TABLE of a distributed source after citus_setup: marked dropped, seen from $node->[1]");
}

# without Citus in the database: 55000
sql(q{CREATE DATABASE nocitus});
$coord->safe_psql('nocitus', 'CREATE EXTENSION media_reco');
($rc, $out, $err) = $coord->psql('nocitus', q{\set VERBOSITY verbose
SELECT media_reco.citus_setup()});
like($err, qr/55000: citus is not installed in this database/, 'citus_setup without Citus: 55000');

done_testing();
