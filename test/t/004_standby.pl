# The neighbour table is WAL-logged: a hot standby sees each refresh and
# serves recommend() and similar_items() read-only; refresh is refused there.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->start;
$primary->safe_psql('postgres', q{
CREATE EXTENSION media_reco;
CREATE TABLE ev AS SELECT * FROM media_reco.synthetic_interactions(3000, 800, 40000, 4);
CREATE INDEX ON ev (user_id);
SELECT media_reco.create_recommender('r', 'ev', weight_col => 'plays');
SELECT 1 FROM media_reco.refresh_neighbors('r');
});
$primary->backup('b');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'b', has_streaming => 1);
$standby->start;

my $sig = q{SELECT count(*) || ':' || round(sum(similarity)::numeric, 6) FROM media_reco.item_neighbors};
my $recs = q{SELECT string_agg(item_id || '=' || round(score::numeric, 9), ',' ORDER BY rank) FROM media_reco.recommend('r', 42, 10)};

$primary->wait_for_catchup($standby);
is($standby->safe_psql('postgres', $sig), $primary->safe_psql('postgres', $sig), 'standby has the neighbour table');

# a new refresh on different data reaches the standby
$primary->safe_psql('postgres', q{
DELETE FROM ev WHERE user_id % 4 = 0;
SELECT 1 FROM media_reco.refresh_neighbors('r');});
$primary->wait_for_catchup($standby);
is($standby->safe_psql('postgres', $sig), $primary->safe_psql('postgres', $sig), 'standby follows a refresh');
is($standby->safe_psql('postgres', $recs), $primary->safe_psql('postgres', $recs), 'recommend on the standby matches the primary');
isnt($standby->safe_psql('postgres', $recs), '', 'and returns rows');
is($standby->safe_psql('postgres', q{SELECT count(*) FROM media_reco.similar_items('r', 1, 5)}), '5', 'similar_items works on the standby');

# ALS: the factor tables reach the standby, which serves recommend_als (also recalculated
# from the live history) and similar_items_als read-only; training is refused there
$primary->safe_psql('postgres', q{SET client_min_messages = warning;
SELECT 1 FROM media_reco.train_als('als', 'ev', weight_col => 'plays', options => '{"factors": 8, "iterations": 3}');});
$primary->wait_for_catchup($standby);
my $als = q{SELECT (SELECT md5(string_agg(item_id || ':' || factors::text, ',' ORDER BY item_id)) FROM media_reco.item_factors WHERE model = 'als')
  || ' ' || (SELECT string_agg(item_id || '=' || round(score::numeric, 5), ',' ORDER BY rank) FROM media_reco.recommend_als('als', 42, 10))
  || ' ' || (SELECT string_agg(item_id::text, ',' ORDER BY rank) FROM media_reco.recommend_als('als', 42, 10, recalculate => true))
  || ' ' || (SELECT string_agg(neighbor_id::text, ',' ORDER BY rank) FROM media_reco.similar_items_als('als', 1, 5))};
like($primary->safe_psql('postgres', $als), qr/^[0-9a-f]{32} \d+=.* \d+.* \d+/, 'the ALS model serves on the primary');
is($standby->safe_psql('postgres', $als), $primary->safe_psql('postgres', $als), 'the standby has the ALS factors and serves them as the primary');
my ($ret, $out, $err) = $standby->psql('postgres', q{SELECT * FROM media_reco.train_als('als', 'ev')});
like($err, qr/cannot execute media_reco.train_als\(\) during recovery/, 'train_als is refused on the standby');

($ret, $out, $err) = $standby->psql('postgres', q{SELECT * FROM media_reco.refresh_neighbors('r')});
like($err, qr/cannot execute media_reco.refresh_neighbors\(\) during recovery/, 'refresh is refused on the standby');

$standby->stop;
$primary->stop;
done_testing();
