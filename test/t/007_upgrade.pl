# Upgrades: a database created at 0.1.0 (the frozen script in the repo, run
# against the new library), filled with recommenders and models, then
# ALTER EXTENSION media_reco UPDATE, must have exactly the catalogue of a
# fresh install of the new version in another database, and its old data
# must answer as before.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('upgrade');
$node->init;
$node->append_conf('postgresql.conf', "maintenance_work_mem = 256MB\n");
$node->start;

my $default = $node->safe_psql('postgres',
	q{SELECT default_version FROM pg_available_extensions WHERE name = 'media_reco'});
isnt($default, '0.1.0', "the default version ($default) is newer than 0.1.0");

# --- 0.1.0, filled with data, served by the new library ----------------------
$node->safe_psql('postgres', 'CREATE DATABASE upgraded');
$node->safe_psql('upgraded', q{
SET client_min_messages = warning;
CREATE EXTENSION media_reco VERSION '0.1.0';
CREATE TABLE ev AS SELECT * FROM media_reco.synthetic_interactions(1500, 300, 20000, 5);
CREATE INDEX ON ev (user_id, item_id) INCLUDE (plays);
SELECT media_reco.create_recommender('r', 'ev', weight_col => 'plays', k => 20, shrinkage => 2);
SELECT media_reco.create_recommender('j', 'ev', metric => 'jaccard', k => 10);
SELECT 1 FROM media_reco.refresh_neighbors('r');
SELECT 1 FROM media_reco.refresh_neighbors('j');
CREATE TABLE users_f AS SELECT user_id, count(*)::float8 AS views, sum(plays)::float8 AS plays,
       (count(*) > 15) AS heavy, (user_id % 3)::float8 AS seg FROM ev GROUP BY user_id;
SELECT 1 FROM media_reco.train_forest('heavy', 'users_f', 'heavy', '{views, plays}', '{"n_trees": 10, "seed": 3}');
SELECT 1 FROM media_reco.train_mlp('seg', 'users_f', 'seg', '{views, plays}', '{"hidden": [8], "epochs": 5, "seed": 1}');
});
is($node->safe_psql('upgraded', q{SELECT extversion FROM pg_extension WHERE extname = 'media_reco'}),
	'0.1.0', 'installed at 0.1.0');

my %answers = (
	'neighbour table' => q{SELECT recommender || ':' || count(*) || ':' || round(sum(similarity)::numeric, 9)
		FROM media_reco.item_neighbors GROUP BY recommender ORDER BY recommender},
	'recommend' => q{SELECT string_agg(item_id || '=' || round(score::numeric, 9), ',' ORDER BY rank)
		FROM media_reco.recommend('r', 5, 10)},
	'similar_items' => q{SELECT string_agg(neighbor_id || '=' || round(similarity::numeric, 9), ',' ORDER BY rank)
		FROM media_reco.similar_items('j', 1, 10)},
	'forest predictions' => q{SELECT md5(string_agg(media_reco.predict('heavy', u)::text, ',' ORDER BY user_id))
		FROM users_f u},
	'network predictions' => q{SELECT md5(string_agg(array_to_string(media_reco.predict_proba('seg', ARRAY[views, plays]), ' '), ',' ORDER BY user_id))
		FROM users_f},
	'model bytes' => q{SELECT string_agg(name || ':' || md5(model), ',' ORDER BY name) FROM media_reco.models},
	'registry' => q{SELECT string_agg(name || ' ' || source::text || ' ' || metric || ' ' || k || ' ' || (refreshed_at IS NOT NULL), ',' ORDER BY name)
		FROM media_reco.recommenders},
	'history' => q{SELECT count(*) FROM media_reco.refresh_history},
);
my %before = map { $_ => $node->safe_psql('upgraded', $answers{$_}) } keys %answers;
isnt($before{'recommend'}, '', 'recommend answers at 0.1.0');

# --- the upgrade -------------------------------------------------------------
$node->safe_psql('upgraded', 'ALTER EXTENSION media_reco UPDATE');
is($node->safe_psql('upgraded', q{SELECT extversion FROM pg_extension WHERE extname = 'media_reco'}),
	$default, "updated to $default");
for my $k (sort keys %answers)
{
	is($node->safe_psql('upgraded', $answers{$k}), $before{$k}, "after the update: $k as before");
}

# --- the catalogue equals a fresh install ------------------------------------
$node->safe_psql('postgres', 'CREATE DATABASE fresh');
$node->safe_psql('fresh', 'CREATE EXTENSION media_reco');

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
my $upgraded = $node->safe_psql('upgraded', $catalogue);
my @fresh = split /\n/, $fresh;
my @upgraded = split /\n/, $upgraded;
my %in_fresh = map { $_ => 1 } @fresh;
my %in_upgraded = map { $_ => 1 } @upgraded;
my @only_fresh = grep { !$in_upgraded{$_} } @fresh;
my @only_upgraded = grep { !$in_fresh{$_} } @upgraded;
cmp_ok(scalar(@fresh), '>', 200, 'the catalogue description covers the extension (' . scalar(@fresh) . ' lines)');
cmp_ok(scalar(grep { /^function / } @fresh), '>=', 60, 'functions described');
cmp_ok(scalar(grep { /^aggregate / } @fresh), '>=', 5, 'aggregates and their support functions described');
cmp_ok(scalar(grep { /^column / } @fresh), '>=', 40, 'columns described');
is(scalar(grep { /^event trigger / } @fresh), 1, 'the event trigger described');
cmp_ok(scalar(grep { /^extension config / } @fresh), '>=', 6, 'extension config tables described');
# every function, table, view and event trigger has a COMMENT
is(join("\n", grep { /^(function |relation \S+ kind=[rv] |event trigger )/ && /comment=-$/ } @fresh), '',
	'every function, table, view and event trigger has a comment');
is(join("\n", @only_fresh), '', 'nothing of a fresh install is missing after the update');
is(join("\n", @only_upgraded), '', 'nothing is left over after the update');
is($upgraded, $fresh, 'the updated catalogue equals a fresh install');

# --- the upgraded database keeps working --------------------------------------
$node->safe_psql('upgraded', q{SET client_min_messages = warning; SELECT 1 FROM media_reco.refresh_neighbors('r')});
is($node->safe_psql('upgraded', $answers{'neighbour table'}), $before{'neighbour table'},
	'a refresh after the update gives the same lists');
is($node->safe_psql('upgraded', $answers{'recommend'}), $before{'recommend'}, 'recommend after the refresh as before');
# the new event trigger works on the upgraded database: a dropped source is marked
$node->safe_psql('upgraded', q{
SET client_min_messages = warning;
CREATE TABLE gone AS SELECT * FROM ev WHERE user_id < 50;
SELECT media_reco.create_recommender('g', 'gone');
DROP TABLE gone;
});
is($node->safe_psql('upgraded', q{SELECT coalesce(source::text, '-') || ' ' || dropped_source FROM media_reco.recommenders WHERE name = 'g'}),
	'- public.gone', 'a dropped source is marked after the update');
my ($rc, $out, $err) = $node->psql('upgraded', q{SELECT * FROM media_reco.refresh_neighbors('g')});
like($err, qr/source relation public\.gone of recommender "g" was dropped/, 'refresh names the dropped source');

# DROP EXTENSION works on both, with the event trigger among the members
for my $db ('upgraded', 'fresh')
{
	$node->safe_psql($db, 'DROP EXTENSION media_reco');
	is($node->safe_psql($db, q{SELECT count(*) FROM pg_event_trigger}), '0', "$db: DROP EXTENSION removes the event trigger");
	$node->safe_psql($db, 'CREATE TABLE after_drop (x int); DROP TABLE after_drop');
}

$node->stop;
done_testing();
