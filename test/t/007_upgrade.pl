# Upgrades: a database created at each released version (0.1.0, 0.2.0, 0.3.0,
# 0.4.0, 0.5.0, 0.6.0, 0.7.0, 0.8.0 and 0.9.0, the frozen scripts in the repo, run against the new library), filled
# with recommenders and models, then ALTER EXTENSION media_reco UPDATE (along
# the chain of update scripts), must have exactly the catalogue of a fresh install of the
# new version in another database, and its old data must answer as before;
# the new metrics then work on it as on the fresh install.  Forests stored
# before 0.5.0 (forest payload version 0, without node covers; bytes written
# by the 0.4.0 code, test/fuzz/corpus/fuzz_forest/v0-regression.model) keep
# predicting after the update and are refused by explain_prediction (55000);
# a forest trained after the update explains as on a fresh install.
# citus_setup (0.6.0) exists after the update and, with no Citus here, fails
# with 55000 as on a fresh install; pair_sums (0.7.0) merges as on a fresh
# install, and so do its metric forms (0.9.0) for adjusted cosine and BM25,
# and Pearson's two passes (0.10.0).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
# a regression forest of payload version 0 (3 features, 2 trees), as the
# 0.4.0 code wrote it: test/fuzz/corpus/fuzz_forest/v0-regression.model in hex
# (the TAP tests run from a copy of test/t, so the bytes are inline)
my $v0_hex = '4d524d31010001007007000000000000d09db32d0000000001000000030000000000000002000000e1f6a4ffefeed73fc00e5f879e81cf3fc081abbc4050d83f2b0000001600000000000000000025400100000001000000000000000000234002000000030000000000000000000cc0000000001d0000000000000000000cc0000000000500000000000000000025c0000000801100000000000000000000c001000000070000000000000000000440000000000b0000000000000000000000000000000000000000000000000023c000000000090000000000000000000000010000000000000000000000000000000200000000000000000000000000e0bf000000000d000000000000000000e0bf020000800f0000000000000000000000030000000000000000000000000000000400000000000000000000000000000005000000000000000000000000000000060000000000000000000000000025400200008013000000000000000000e03f0100008017000000000000000000f07f0200000015000000000000000000000009000000000000000000000000000000070000000000000000000000000000000800000000000000000000000000f07f0200000019000000000000000000f8bf000000001b00000000000000000000000a0000000000000000000000000000000b0000000000000000000000000000000c0000000000000000000000000000000d00000000000000000000000000f83f020000001f0000000000000000002140020000802300000000000000000000000e000000000000000000000000001ac0000000002100000000000000000000000f0000000000000000000000000000001000000000000000000000000000184000000000250000000000000000000000150000000000000000000000000000000000000027000000000000000000f07f000000002900000000000000000000001100000000000000000000000000000012000000000000000000000000000000130000000000000000000000000000001400000000000000000000000000f0bf0000000000000cc0abaaaaaaaaaa0ec0000000000000fc3f000000000000e83f0000000000001840000000000000000000000000000031400000000000002d400000000000001c40000000000000044025499224499227400000000000001240000000000000104000000000008039400000000000002f400000000000003640000000000000284000000000000029400000000000002240000000000000254000000000000000403100000019000000000000000000254001000000010000000000000000000c40000000000300000000000000000008c0000000001f000000000000000000f07f02000000050000000000000000000040020000001100000000000000000012c000000000070000000000000000001a40010000800d00000000000000000018c000000080090000000000000000002240020000800b0000000000000000000000000000000000000000000000000000000100000000000000000000000000000002000000000000000000000000000000030000000000000000000000000021c0010000000f0000000000000000000000060000000000000000000000000000000400000000000000000000000000000005000000000000000000000000001ac0020000001300000000000000000008400100008019000000000000000000f8bf0100000015000000000000000000f0bf020000801700000000000000000000000700000000000000000000000000000008000000000000000000000000000000090000000000000000000000000000000a000000000000000000000000001a40000000801b000000000000000000f07f000000001d00000000000000000000000b0000000000000000000000000000000c0000000000000000000000000000000d0000000000000000000000000000000e0000000000000000000000000023c000000000210000000000000000000cc0020000002700000000000000000000000f000000000000000000000000001240020000002300000000000000000000001000000000000000000000000000f07f02000000250000000000000000000000110000000000000000000000000000001200000000000000000000000000044000000000290000000000000000000c40000000002d000000000000000000000013000000000000000000000000001640000000002b000000000000000000000014000000000000000000000000000000150000000000000000000000000000001600000000000000000000000000f03f020000002f00000000000000000000001700000000000000000000000000000018000000000000000000000000000cc0000000000000f8bf333333333333d33f000000000000044000000000000026400000000000003040000000000000124000000000008037400000000000002b4000000000000016400000000000000000000000000000324000000000000010400000000000803840000000000080344000000000008039400000000000002f4000000000000036400000000000003540000000000080364000000000000029400000000000003340000000000000004000000000000022400000000000002540';

my $node = PostgreSQL::Test::Cluster->new('upgrade');
$node->init;
$node->append_conf('postgresql.conf', "maintenance_work_mem = 256MB\n");
$node->start;

my $default = $node->safe_psql('postgres',
	q{SELECT default_version FROM pg_available_extensions WHERE name = 'media_reco'});
is($default, '0.10.0', 'the default version is 0.10.0');
# the update scripts chain: each version goes through the later ones
my %paths = ('0.1.0' => '0.1.0--0.2.0--0.3.0--0.4.0--0.5.0--0.6.0--0.7.0--0.8.0--0.9.0--0.10.0',
	'0.2.0' => '0.2.0--0.3.0--0.4.0--0.5.0--0.6.0--0.7.0--0.8.0--0.9.0--0.10.0',
	'0.3.0' => '0.3.0--0.4.0--0.5.0--0.6.0--0.7.0--0.8.0--0.9.0--0.10.0',
	'0.4.0' => '0.4.0--0.5.0--0.6.0--0.7.0--0.8.0--0.9.0--0.10.0',
	'0.5.0' => '0.5.0--0.6.0--0.7.0--0.8.0--0.9.0--0.10.0',
	'0.6.0' => '0.6.0--0.7.0--0.8.0--0.9.0--0.10.0',
	'0.7.0' => '0.7.0--0.8.0--0.9.0--0.10.0', '0.8.0' => '0.8.0--0.9.0--0.10.0',
	'0.9.0' => '0.9.0--0.10.0');
for my $from (sort keys %paths)
{
	my $path = $node->safe_psql('postgres', qq{
SELECT path FROM pg_extension_update_paths('media_reco') WHERE source = '$from' AND target = '$default'});
	is($path, $paths{$from}, "the update path from $from is $path");
}

# the data every database gets (the same rows: a seeded generator)
my $fill = q{
SET client_min_messages = warning;
CREATE TABLE ev AS SELECT * FROM media_reco.synthetic_interactions(1500, 300, 20000, 5);
CREATE INDEX ON ev (user_id, item_id) INCLUDE (plays);
CREATE TABLE users_f AS SELECT user_id, count(*)::float8 AS views, sum(plays)::float8 AS plays,
       (count(*) > 15) AS heavy, (user_id % 3)::float8 AS seg FROM ev GROUP BY user_id;
};

# recommenders and models made at the old version
my $fill_old = q{
SET client_min_messages = warning;
SELECT media_reco.create_recommender('r', 'ev', weight_col => 'plays', k => 20, shrinkage => 2);
SELECT media_reco.create_recommender('j', 'ev', metric => 'jaccard', k => 10);
SELECT media_reco.create_recommender('b', 'ev', metric => 'bm25', k => 10, bm25_k1 => 50, bm25_b => 0.5);
SELECT 1 FROM media_reco.refresh_neighbors('r');
SELECT 1 FROM media_reco.refresh_neighbors('j');
SELECT 1 FROM media_reco.refresh_neighbors('b');
SELECT 1 FROM media_reco.train_forest('heavy', 'users_f', 'heavy', '{views, plays}', '{"n_trees": 10, "seed": 3}');
SELECT 1 FROM media_reco.train_mlp('seg', 'users_f', 'seg', '{views, plays}', '{"hidden": [8], "epochs": 5, "seed": 1}');
SELECT media_reco.save_model('v0', decode('$v0_hex', 'hex'));
};
$fill_old =~ s/\$v0_hex/$v0_hex/;

my %answers = (
	'neighbour table' => q{SELECT recommender || ':' || count(*) || ':' || round(sum(similarity)::numeric, 9)
		FROM media_reco.item_neighbors GROUP BY recommender ORDER BY recommender},
	'stored lists' => q{SELECT md5(string_agg(recommender || item_id || ':' || neighbor_id || '=' || similarity || '/' || support,
		',' ORDER BY recommender, item_id, rank)) FROM media_reco.item_neighbors},
	'recommend' => q{SELECT string_agg(item_id || '=' || round(score::numeric, 9), ',' ORDER BY rank)
		FROM media_reco.recommend('r', 5, 10)},
	'similar_items' => q{SELECT string_agg(neighbor_id || '=' || round(similarity::numeric, 9), ',' ORDER BY rank)
		FROM media_reco.similar_items('j', 1, 10)},
	'forest predictions' => q{SELECT md5(string_agg(media_reco.predict('heavy', u)::text, ',' ORDER BY user_id))
		FROM users_f u},
	'network predictions' => q{SELECT md5(string_agg(array_to_string(media_reco.predict_proba('seg', ARRAY[views, plays]), ' '), ',' ORDER BY user_id))
		FROM users_f},
	'old-format forest predictions' => q{SELECT string_agg(media_reco.predict('v0', f)::text, ',' ORDER BY f::text)
		FROM (VALUES (ARRAY[-11, 0, 5]::float8[]), (ARRAY[4, -2, NULL]), (ARRAY[10, 10, 10]), (ARRAY[NULL, NULL, NULL]::float8[])) v(f)},
	'model bytes' => q{SELECT string_agg(name || ':' || md5(model), ',' ORDER BY name) FROM media_reco.models},
	'registry' => q{SELECT string_agg(name || ' ' || source::text || ' ' || metric || ' ' || k || ' ' || bm25_k1 || ' ' || bm25_b
		|| ' ' || (refreshed_at IS NOT NULL), ',' ORDER BY name)
		FROM media_reco.recommenders},
	'history' => q{SELECT count(*) FROM media_reco.refresh_history},
);

# the learned models, computed and stored the same way on every database at the new version
my $learned = q{
SET client_min_messages = warning;
SELECT media_reco.create_recommender('e', 'ev', weight_col => 'plays', metric => 'ease', k => 20, ease_lambda => 50);
SELECT media_reco.create_recommender('p', 'ev', metric => 'rp3beta', k => 20, rp3_alpha => 0.8);
SELECT 1 FROM media_reco.refresh_neighbors('e');
SELECT 1 FROM media_reco.refresh_neighbors('p');
};
my $learned_lists = q{
SELECT md5(string_agg(recommender || item_id || ':' || neighbor_id || '=' || similarity || '/' || support,
       ',' ORDER BY recommender, item_id, rank))
  FROM media_reco.item_neighbors WHERE recommender IN ('e', 'p')};
my $learned_history = q{
SELECT string_agg(recommender || ' ' || (parameters - 'source' - 'threads' - 'phases')::text, ', ' ORDER BY recommender)
  FROM media_reco.refresh_history WHERE recommender IN ('e', 'p')};

# --- a fresh install of the new version ---------------------------------------
$node->safe_psql('postgres', 'CREATE DATABASE fresh');
$node->safe_psql('fresh', 'CREATE EXTENSION media_reco');
$node->safe_psql('fresh', $fill);

# every object of the extension, described without OIDs, one line each
my $catalogue = q{
WITH ext AS (SELECT oid, extnamespace FROM pg_extension WHERE extname = 'media_reco'),
members AS (SELECT d.classid, d.objid FROM pg_depend d, ext
             WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid AND d.deptype = 'e')
SELECT line FROM (
  SELECT 'member ' || pg_describe_object(classid, objid, 0) AS line FROM members
  UNION ALL
  SELECT 'function ' || p.oid::regprocedure || ' args(' || pg_get_function_arguments(p.oid)
         || ') returns ' || pg_get_function_result(p.oid) || ' kind=' || p.prokind::text
         || ' lang=' || l.lanname || ' vol=' || p.provolatile::text || ' strict=' || p.proisstrict
         || ' parallel=' || p.proparallel::text || ' secdef=' || p.prosecdef || ' leakproof=' || p.proleakproof
         || ' cost=' || p.procost || ' rows=' || p.prorows || ' config=' || coalesce(p.proconfig::text, '-')
         || ' src=' || md5(coalesce(p.prosrc, '')) || ' bin=' || coalesce(p.probin, '-')
         || ' acl=' || coalesce(p.proacl::text, '-')
         || ' comment=' || coalesce(obj_description(p.oid, 'pg_proc'), '-')
    FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang, ext WHERE p.pronamespace = ext.extnamespace
  UNION ALL
  SELECT 'aggregate ' || a.aggfnoid::regprocedure || ' kind=' || a.aggkind::text || ' sfunc=' || a.aggtransfn::regprocedure
         || ' final=' || a.aggfinalfn::regproc || ' combine=' || a.aggcombinefn::regproc
         || ' serial=' || a.aggserialfn::regproc || ' deserial=' || a.aggdeserialfn::regproc
         || ' stype=' || a.aggtranstype::regtype || ' init=' || coalesce(a.agginitval, '-')
         || ' finalextra=' || a.aggfinalextra || ' finalmodify=' || a.aggfinalmodify::text
         || ' sspace=' || a.aggtransspace
    FROM pg_aggregate a JOIN pg_proc p ON p.oid = a.aggfnoid, ext WHERE p.pronamespace = ext.extnamespace
  UNION ALL
  SELECT 'type ' || t.typname || ' ' || t.typtype::text || ' rel=' || coalesce(t.typrelid::regclass::text, '-')
         || ' elem=' || t.typelem::regtype || ' acl=' || coalesce(t.typacl::text, '-')
    FROM pg_type t, ext WHERE t.typnamespace = ext.extnamespace
  UNION ALL
  SELECT 'relation ' || c.relname || ' kind=' || c.relkind::text || ' persistence=' || c.relpersistence::text
         || ' options=' || coalesce(c.reloptions::text, '-') || ' acl=' || coalesce(c.relacl::text, '-')
         || ' rls=' || c.relrowsecurity || ' comment=' || coalesce(obj_description(c.oid, 'pg_class'), '-')
    FROM pg_class c, ext WHERE c.relnamespace = ext.extnamespace
  UNION ALL
  SELECT 'column ' || c.relname || '.' || a.attname || ' #' || a.attnum || ' ' || format_type(a.atttypid, a.atttypmod)
         || ' notnull=' || a.attnotnull || ' default=' || coalesce(pg_get_expr(d.adbin, d.adrelid), '-')
         || ' identity=' || a.attidentity::text || ' generated=' || a.attgenerated::text || ' storage=' || a.attstorage::text
         || ' collation=' || a.attcollation::regcollation || ' acl=' || coalesce(a.attacl::text, '-')
         || ' comment=' || coalesce(col_description(c.oid, a.attnum), '-')
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
         LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum, ext
   WHERE c.relnamespace = ext.extnamespace AND a.attnum > 0 AND NOT a.attisdropped
  UNION ALL
  SELECT 'constraint ' || c.relname || '.' || k.conname || ' ' || k.contype::text || ' ' || pg_get_constraintdef(k.oid)
         || ' deferrable=' || k.condeferrable || ' validated=' || k.convalidated
    FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid, ext WHERE c.relnamespace = ext.extnamespace
  UNION ALL
  SELECT 'index ' || pg_get_indexdef(i.indexrelid)
    FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid, ext WHERE c.relnamespace = ext.extnamespace
  UNION ALL
  SELECT 'view ' || c.relname || ' ' || pg_get_viewdef(c.oid)
    FROM pg_class c, ext WHERE c.relnamespace = ext.extnamespace AND c.relkind IN ('v', 'm')
  UNION ALL
  SELECT 'sequence ' || s.seqrelid::regclass || ' ' || s.seqtypid::regtype || ' ' || s.seqstart || ' '
         || s.seqincrement || ' ' || s.seqmax || ' ' || s.seqmin || ' ' || s.seqcache || ' ' || s.seqcycle
    FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid, ext WHERE c.relnamespace = ext.extnamespace
  UNION ALL
  SELECT 'trigger ' || t.tgrelid::regclass || ' ' || t.tgname || ' ' || pg_get_triggerdef(t.oid)
    FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid, ext
   WHERE c.relnamespace = ext.extnamespace AND NOT t.tgisinternal
  UNION ALL
  SELECT 'event trigger ' || e.evtname || ' on ' || e.evtevent || ' ' || e.evtfoid::regprocedure
         || ' enabled=' || e.evtenabled::text || ' tags=' || coalesce(e.evttags::text, '-')
         || ' comment=' || coalesce(obj_description(e.oid, 'pg_event_trigger'), '-')
    FROM pg_event_trigger e JOIN members m ON m.classid = 'pg_event_trigger'::regclass AND m.objid = e.oid
  UNION ALL
  SELECT 'policy ' || p.polrelid::regclass || ' ' || p.polname
    FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid, ext WHERE c.relnamespace = ext.extnamespace
  UNION ALL
  SELECT 'schema ' || n.nspname || ' owner-is-super=' || r.rolsuper || ' acl=' || coalesce(n.nspacl::text, '-')
         || ' comment=' || coalesce(obj_description(n.oid, 'pg_namespace'), '-')
    FROM pg_namespace n JOIN pg_roles r ON r.oid = n.nspowner, ext WHERE n.oid = ext.extnamespace
  UNION ALL
  SELECT 'extension config ' || cfg::regclass || ' condition=' || coalesce(e.extcondition[ord], '-')
    FROM pg_extension e, unnest(e.extconfig) WITH ORDINALITY AS u(cfg, ord) WHERE e.extname = 'media_reco'
  UNION ALL
  SELECT 'extension ' || e.extname || ' relocatable=' || e.extrelocatable || ' schema=' || e.extnamespace::regnamespace
    FROM pg_extension e WHERE e.extname = 'media_reco'
) x ORDER BY line COLLATE "C"
};
my $fresh = $node->safe_psql('fresh', $catalogue);
my @fresh = split /\n/, $fresh;
cmp_ok(scalar(@fresh), '>', 200, 'the catalogue description covers the extension (' . scalar(@fresh) . ' lines)');
cmp_ok(scalar(grep { /^function / } @fresh), '>=', 60, 'functions described');
cmp_ok(scalar(grep { /^aggregate / } @fresh), '>=', 5, 'aggregates and their support functions described');
cmp_ok(scalar(grep { /^column / } @fresh), '>=', 40, 'columns described');
is(scalar(grep { /^event trigger / } @fresh), 2, 'the event triggers (recommenders, ALS models) described');
cmp_ok(scalar(grep { /^extension config / } @fresh), '>=', 6, 'extension config tables described');
is(scalar(grep { /^column recommenders\.(ease_lambda|rp3_alpha|rp3_beta|ease_max_items) / } @fresh), 4,
	"the registry's option columns described");
is(scalar(grep { /^function media_reco\.(item_similarity|create_recommender)\(.*ease_max_items integer DEFAULT NULL/ } @fresh), 2,
	'the new signatures described');
# every function, table, view and event trigger has a COMMENT
is(join("\n", grep { /^(function |relation \S+ kind=[rv] |event trigger )/ && /comment=-$/ } @fresh), '',
	'every function, table, view and event trigger has a comment');

$node->safe_psql('fresh', $fill_old);
$node->safe_psql('fresh', $learned);
my $fresh_learned = $node->safe_psql('fresh', $learned_lists);
# explanations (new in 0.5.0): a forest and a network trained after the update explain as on a fresh install
my $explain = q{
SET client_min_messages = warning;
SELECT 1 FROM media_reco.train_forest('heavy5', 'users_f', 'heavy', '{views, plays, seg}', '{"n_trees": 10, "seed": 3}');
SELECT md5(string_agg(e.feature || '=' || e.contribution, ',' ORDER BY u.user_id, e.rank))
       || ' ' || (SELECT string_agg(feature || '=' || round(importance::numeric, 12), ',' ORDER BY rank)
                    FROM media_reco.shap_importance('heavy5', 'users_f', 100))
       || ' ' || (SELECT string_agg(feature, ',' ORDER BY rank)
                    FROM media_reco.explain_prediction('seg', (SELECT u FROM users_f u ORDER BY user_id LIMIT 1)))
  FROM users_f u, LATERAL media_reco.explain_prediction('heavy5', u) e;
};
my $fresh_explain = $node->safe_psql('fresh', $explain);
# pair sums (new in 0.7.0): merged lists equal item_similarity's over the same rows
my $pair_sums = q{
SELECT md5(string_agg(item_id || ':' || neighbor_id || '=' || similarity || '/' || support, ',' ORDER BY item_id, rank))
  FROM media_reco.pair_sums_neighbors((SELECT media_reco.pair_sums(user_id, item_id, plays::float8, true, 'plays') FROM ev), 'cosine', 10)};
my $fresh_pair_sums = $node->safe_psql('fresh', $pair_sums);
is($fresh_pair_sums, $node->safe_psql('fresh', q{
SELECT md5(string_agg(item_id || ':' || neighbor_id || '=' || similarity || '/' || support, ',' ORDER BY item_id, rank))
  FROM media_reco.item_similarity('ev', weight_col => 'plays', k => 10)}), 'fresh: pair sums merge into the lists of item_similarity');
# the metric form (new in 0.9.0): adjusted cosine's centred sums merge into item_similarity's lists
my $pair_sums_adjusted = q{
SELECT md5(string_agg(item_id || ':' || neighbor_id || '=' || similarity || '/' || support, ',' ORDER BY item_id, rank))
  FROM media_reco.pair_sums_neighbors(ARRAY(SELECT media_reco.pair_sums('adjusted_cosine', user_id, item_id, plays::float8, 'plays')
                                               FROM ev GROUP BY user_id % 3), 'adjusted_cosine', 10)};
my $fresh_pair_sums_adjusted = $node->safe_psql('fresh', $pair_sums_adjusted);
is($fresh_pair_sums_adjusted, $node->safe_psql('fresh', q{
SELECT md5(string_agg(item_id || ':' || neighbor_id || '=' || similarity || '/' || support, ',' ORDER BY item_id, rank))
  FROM media_reco.item_similarity('ev', weight_col => 'plays', metric => 'adjusted_cosine', k => 10)}),
	'fresh: adjusted-cosine pair sums merge into the lists of item_similarity');
# BM25's two passes (new in 0.9.0): the first pass's mean length, then the terms' pair sums
my $pair_sums_bm25 = q{
SELECT md5(string_agg(item_id || ':' || neighbor_id || '=' || similarity || '/' || support, ',' ORDER BY item_id, rank))
  FROM media_reco.pair_sums_neighbors(ARRAY(
         SELECT media_reco.pair_sums('bm25', user_id, item_id, plays::float8, 'plays',
                  (SELECT jsonb_build_object('bm25_k1', 50, 'bm25_b', 0.5, 'mean_length',
                            media_reco.pair_sums_mean_length(ARRAY(SELECT media_reco.pair_sums('bm25', user_id, item_id, plays::float8, 'plays')
                                                                     FROM ev GROUP BY user_id % 2)))))
           FROM ev GROUP BY user_id % 3), 'bm25', 10)};
my $fresh_pair_sums_bm25 = $node->safe_psql('fresh', $pair_sums_bm25);
is($fresh_pair_sums_bm25, $node->safe_psql('fresh', q{
SELECT md5(string_agg(item_id || ':' || neighbor_id || '=' || similarity || '/' || support, ',' ORDER BY item_id, rank))
  FROM media_reco.item_similarity('ev', weight_col => 'plays', metric => 'bm25', k => 10, bm25_k1 => 50, bm25_b => 0.5)}),
	'fresh: BM25 pair sums in two passes merge into the lists of item_similarity');
# Pearson's two passes (new in 0.10.0): the first pass's item means, then the centred pair sums
my $pair_sums_pearson = q{
SELECT md5(string_agg(item_id || ':' || neighbor_id || '=' || similarity || '/' || support, ',' ORDER BY item_id, rank))
  FROM media_reco.pair_sums_neighbors(ARRAY(
         SELECT media_reco.pair_sums('pearson', user_id, item_id, plays::float8, 'plays', NULL,
                  (SELECT media_reco.pair_sums_item_means(ARRAY(SELECT media_reco.pair_sums('pearson', user_id, item_id, plays::float8, 'plays')
                                                                  FROM ev GROUP BY user_id % 2))))
           FROM ev GROUP BY user_id % 3), 'pearson', 10)};
my $fresh_pair_sums_pearson = $node->safe_psql('fresh', $pair_sums_pearson);
is($fresh_pair_sums_pearson, $node->safe_psql('fresh', q{
SELECT md5(string_agg(item_id || ':' || neighbor_id || '=' || similarity || '/' || support, ',' ORDER BY item_id, rank))
  FROM media_reco.item_similarity('ev', weight_col => 'plays', metric => 'pearson', k => 10)}),
	'fresh: Pearson pair sums in two passes merge into the lists of item_similarity');
isnt($fresh_pair_sums_pearson, '', 'fresh: Pearson has neighbours on these rows');
# implicit ALS (new in 0.4.0): the same factors on an updated database as on a fresh install
my $als = q{
SET client_min_messages = warning;
SELECT 1 FROM media_reco.train_als('a', 'ev', weight_col => 'plays', options => '{"factors": 8, "iterations": 3}');
SELECT md5(string_agg(item_id || ':' || factors::text, ',' ORDER BY item_id))
       || ' ' || (SELECT string_agg(item_id::text, ',' ORDER BY rank) FROM media_reco.recommend_als('a', 5))
  FROM media_reco.item_factors WHERE model = 'a';
};
my $fresh_als = $node->safe_psql('fresh', $als);
my $fresh_learned_history = $node->safe_psql('fresh', $learned_history);
my $fresh_ease_on_the_fly = $node->safe_psql('fresh',
	q{SELECT md5(string_agg(item_id || ':' || neighbor_id || '=' || similarity, ',' ORDER BY item_id, rank))
	    FROM media_reco.item_similarity('ev', metric => 'ease', k => 5)});

for my $from (sort keys %paths)
{
	my $db = 'from_' . ($from =~ tr/./_/r);

	# --- the old version, filled with data, served by the new library -------
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, qq{SET client_min_messages = warning; CREATE EXTENSION media_reco VERSION '$from';});
	$node->safe_psql($db, $fill);
	$node->safe_psql($db, $fill_old);
	is($node->safe_psql($db, q{SELECT extversion FROM pg_extension WHERE extname = 'media_reco'}),
		$from, "$db: installed at $from");
	my %before = map { $_ => $node->safe_psql($db, $answers{$_}) } keys %answers;
	isnt($before{'recommend'}, '', "$db: recommend answers at $from");
	# the old 10-argument item_similarity reaches the new metrics with their defaults
	is($node->safe_psql($db,
		q{SELECT md5(string_agg(item_id || ':' || neighbor_id || '=' || similarity, ',' ORDER BY item_id, rank))
		    FROM media_reco.item_similarity('ev', metric => 'ease', k => 5)}),
		$fresh_ease_on_the_fly, "$db: the $from declaration of item_similarity computes ease as $default does");
	my ($rc, $out, $err);
	if ($from lt '0.3.0')
	{
		# ... but the old registry has no place for them
		($rc, $out, $err) = $node->psql($db, q{SELECT media_reco.create_recommender('e0', 'ev', metric => 'ease')});
		like($err, qr/violates check constraint "recommenders_metric_check"/, "$db: no ease recommender before the update");
	}

	# --- the update ---------------------------------------------------------
	$node->safe_psql($db, 'ALTER EXTENSION media_reco UPDATE');
	is($node->safe_psql($db, q{SELECT extversion FROM pg_extension WHERE extname = 'media_reco'}),
		$default, "$db: updated to $default");
	for my $k (sort keys %answers)
	{
		is($node->safe_psql($db, $answers{$k}), $before{$k}, "$db: after the update, $k as before");
	}
	is($node->safe_psql($db, q{SELECT count(*) FROM media_reco.recommenders
		WHERE ease_lambda IS NOT NULL OR rp3_alpha IS NOT NULL OR rp3_beta IS NOT NULL OR ease_max_items IS NOT NULL}),
		'0', "$db: the old recommenders have no learned options (NULL: the defaults)");

	# --- the catalogue equals a fresh install --------------------------------
	my $upgraded = $node->safe_psql($db, $catalogue);
	my @upgraded = split /\n/, $upgraded;
	my %in_fresh = map { $_ => 1 } @fresh;
	my %in_upgraded = map { $_ => 1 } @upgraded;
	is(join("\n", grep { !$in_upgraded{$_} } @fresh), '', "$db: nothing of a fresh install is missing after the update");
	is(join("\n", grep { !$in_fresh{$_} } @upgraded), '', "$db: nothing is left over after the update");
	is($upgraded, $fresh, "$db: the updated catalogue equals a fresh install");

	# --- the updated database keeps working ----------------------------------
	$node->safe_psql($db, q{SET client_min_messages = warning; SELECT 1 FROM media_reco.refresh_neighbors('r')});
	is($node->safe_psql($db, $answers{'neighbour table'}), $before{'neighbour table'},
		"$db: a refresh after the update gives the same lists");
	is($node->safe_psql($db, $answers{'recommend'}), $before{'recommend'}, "$db: recommend after the refresh as before");
	# the new metrics: the same lists and history as on the fresh install
	$node->safe_psql($db, $learned);
	is($node->safe_psql($db, $learned_lists), $fresh_learned, "$db: ease and rp3beta store the lists of a fresh install");
	is($node->safe_psql($db, $learned_history), $fresh_learned_history,
		"$db: and record the same parameters");
	is($node->safe_psql($db, $als), $fresh_als, "$db: train_als and recommend_als as on a fresh install");
	is($node->safe_psql($db, $explain), $fresh_explain, "$db: explain_prediction and shap_importance as on a fresh install");
	($rc, $out, $err) = $node->psql($db, q{SELECT * FROM media_reco.explain_prediction('v0', ARRAY[1, 2, 3]::float8[])});
	like($err, qr/model "v0" stores no node covers/, "$db: an old-format forest is not explained (but predicts, above)");
	($rc, $out, $err) = $node->psql($db, q{\set VERBOSITY verbose
SELECT * FROM media_reco.citus_setup()});
	like($err, qr/55000: citus is not installed in this database/, "$db: citus_setup without Citus: 55000");
	is($node->safe_psql($db, $pair_sums), $fresh_pair_sums, "$db: pair_sums and pair_sums_neighbors as on a fresh install");
	is($node->safe_psql($db, $pair_sums_adjusted), $fresh_pair_sums_adjusted,
		"$db: the metric form of pair_sums as on a fresh install");
	is($node->safe_psql($db, $pair_sums_bm25), $fresh_pair_sums_bm25,
		"$db: BM25's two passes of pair_sums as on a fresh install");
	is($node->safe_psql($db, $pair_sums_pearson), $fresh_pair_sums_pearson,
		"$db: Pearson's two passes of pair_sums as on a fresh install");
	# the event trigger works on the updated database: a dropped source is marked
	$node->safe_psql($db, q{
SET client_min_messages = warning;
CREATE TABLE gone AS SELECT * FROM ev WHERE user_id < 50;
SELECT media_reco.create_recommender('g', 'gone');
DROP TABLE gone;
});
	is($node->safe_psql($db, q{SELECT coalesce(source::text, '-') || ' ' || dropped_source FROM media_reco.recommenders WHERE name = 'g'}),
		'- public.gone', "$db: a dropped source is marked after the update");
	($rc, $out, $err) = $node->psql($db, q{SELECT * FROM media_reco.refresh_neighbors('g')});
	like($err, qr/source relation public\.gone of recommender "g" was dropped/, "$db: refresh names the dropped source");
}

# DROP EXTENSION works on every database, with the event trigger among the members
for my $db ('from_0_1_0', 'from_0_2_0', 'from_0_3_0', 'from_0_4_0', 'from_0_5_0', 'fresh')
{
	$node->safe_psql($db, 'DROP EXTENSION media_reco');
	is($node->safe_psql($db, q{SELECT count(*) FROM pg_event_trigger}), '0', "$db: DROP EXTENSION removes the event trigger");
	$node->safe_psql($db, 'CREATE TABLE after_drop (x int); DROP TABLE after_drop');
}

$node->stop;
done_testing();
