# The registry, the neighbour table and the refresh history survive
# pg_dump / pg_restore (they are extension configuration tables), and the
# restored recommender keeps working and refreshing.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('dump');
$node->init;
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION media_reco;
CREATE TABLE ev AS SELECT * FROM media_reco.synthetic_interactions(2000, 400, 30000, 8);
CREATE INDEX ON ev (user_id, item_id) INCLUDE (plays);
SELECT media_reco.create_recommender('r', 'ev', weight_col => 'plays', k => 20, shrinkage => 2);
SELECT 1 FROM media_reco.refresh_neighbors('r');
SELECT 1 FROM media_reco.refresh_neighbors('r');
CREATE TABLE users_f AS SELECT user_id, count(*)::float8 AS views, sum(plays)::float8 AS plays,
       (count(*) > 15) AS heavy FROM ev GROUP BY user_id;
SELECT 1 FROM media_reco.train_forest('heavy', 'users_f', 'heavy', '{plays}', '{"n_trees": 10, "seed": 3}');
SET client_min_messages = warning;
SELECT 1 FROM media_reco.train_als('als', 'ev', weight_col => 'plays', options => '{"factors": 8, "iterations": 3}');
});

my $sig = q{SELECT count(*) || ':' || round(sum(similarity)::numeric, 9) FROM media_reco.item_neighbors WHERE recommender = 'r'};
my $recs = q{SELECT string_agg(item_id || '=' || round(score::numeric, 9), ',' ORDER BY rank) FROM media_reco.recommend('r', 5, 10)};
my $reg = q{SELECT name || ' ' || source::text || ' ' || weight_col || ' ' || k || ' ' || shrinkage || ' ' || (refreshed_at IS NOT NULL) FROM media_reco.recommenders};
my $model = q{SELECT md5(model) || ' ' || (SELECT sum(media_reco.predict('heavy', u)) FROM users_f u) FROM media_reco.models WHERE name = 'heavy'};
# the ALS model: registry row, both factor tables, and what it serves
my $als = q{SELECT (SELECT name || ' ' || source::text || ' ' || options::text || ' ' || users || ' ' || items || ' ' || loss::text FROM media_reco.als_models)
  || ' ' || (SELECT md5(string_agg(item_id || ':' || factors::text, ',' ORDER BY item_id)) FROM media_reco.item_factors)
  || ' ' || (SELECT md5(string_agg(user_id || ':' || factors::text, ',' ORDER BY user_id)) FROM media_reco.user_factors)
  || ' ' || (SELECT string_agg(item_id || '=' || round(score::numeric, 6), ',' ORDER BY rank) FROM media_reco.recommend_als('als', 5, 10))};
my %before = map { $_ => $node->safe_psql('postgres', $_) } ($sig, $recs, $reg, $model, $als);

my $dump = $node->basedir . '/media_reco.dump';
$node->command_ok([ 'pg_dump', '-Fc', '-d', $node->connstr('postgres'), '-f', $dump ], 'pg_dump succeeds');
$node->safe_psql('postgres', 'CREATE DATABASE restored');
$node->command_ok([ 'pg_restore', '--exit-on-error', '-d', $node->connstr('restored'), $dump ], 'pg_restore succeeds');

is($node->safe_psql('restored', $reg), $before{$reg}, 'registry restored');
is($node->safe_psql('restored', $sig), $before{$sig}, 'neighbour table restored');
is($node->safe_psql('restored', $recs), $before{$recs}, 'recommend answers as before');
is($node->safe_psql('restored', q{SELECT count(*) FROM media_reco.refresh_history}), '2', 'refresh history restored');
is($node->safe_psql('restored', $model), $before{$model}, 'named model restored: same bytes, same predictions');
is($node->safe_psql('restored', $als), $before{$als}, 'ALS model restored: registry, factors, recommend_als');
$node->safe_psql('restored', q{SET client_min_messages = warning;
SELECT 1 FROM media_reco.train_als('als', 'ev', weight_col => 'plays', options => '{"factors": 8, "iterations": 3}');});
is($node->safe_psql('restored', $als), $before{$als}, 'the restored ALS model retrains to the same factors');

# the restored recommender refreshes, and its history ids continue (identity restored)
$node->safe_psql('restored', q{SELECT 1 FROM media_reco.refresh_neighbors('r')});
is($node->safe_psql('restored', $sig), $before{$sig}, 'a refresh after restore gives the same lists');
is($node->safe_psql('restored', q{SELECT count(DISTINCT id) FROM media_reco.refresh_history}), '3', 'history ids continue after restore');
$node->safe_psql('restored', q{SELECT media_reco.create_recommender('r2', 'ev', metric => 'jaccard')});
is($node->safe_psql('restored', q{SELECT count(DISTINCT id) FROM media_reco.recommenders}), '2', 'recommender ids continue after restore');

$node->stop;
done_testing();
