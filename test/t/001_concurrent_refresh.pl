# Readers during refresh_neighbors see the complete old or the complete new
# neighbour set, never an empty or mixed one, and never wait on a lock;
# two refreshes of one recommender never interleave.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('concurrent');
$node->init;
$node->append_conf('postgresql.conf', "maintenance_work_mem = '512MB'");
$node->start;

$node->safe_psql('postgres', q{
CREATE EXTENSION media_reco;
CREATE TABLE ev AS SELECT * FROM media_reco.synthetic_interactions(20000, 4000, 400000, 5);
CREATE INDEX ON ev (user_id);
-- the source alternates between two versions of the data
CREATE TABLE ver (v int NOT NULL);
INSERT INTO ver VALUES (0);
CREATE VIEW ev_v AS SELECT user_id, item_id, plays FROM ev
  WHERE user_id % 3 <> (SELECT v FROM ver);
CREATE TABLE done (flag bool NOT NULL);
INSERT INTO done VALUES (false);
SELECT media_reco.create_recommender('r', 'ev_v', weight_col => 'plays', k => 30);
});

# the signature of each version: computed independently with item_similarity
my %valid;
for my $v (0, 1)
{
	my $sig = $node->safe_psql('postgres', qq{
UPDATE ver SET v = $v;
SELECT count(*) || ':' || round(sum(similarity)::numeric, 6)
  FROM media_reco.item_similarity('ev_v', weight_col => 'plays', k => 30);});
	$valid{$sig} = "version $v";
}
is(scalar(keys %valid), 2, 'the two data versions give different neighbour sets');

$node->safe_psql('postgres', q{UPDATE ver SET v = 0; SELECT * FROM media_reco.refresh_neighbors('r');});
# a user present in both versions (user_id % 3 = 2), with some history
my $uid = $node->safe_psql('postgres', q{
SELECT user_id FROM ev WHERE user_id % 3 = 2 GROUP BY 1 HAVING count(*) >= 10 ORDER BY 1 LIMIT 1});

my $read_sig = q{SELECT count(*) || ':' || round(sum(similarity)::numeric, 6)
  FROM media_reco.item_neighbors WHERE recommender = 'r'};
ok(exists $valid{ $node->safe_psql('postgres', $read_sig) }, 'first refresh materialized version 0');

# a writer flips the data and refreshes six times
my $writer = $node->background_psql('postgres', on_error_stop => 1);
$writer->query_until(qr/started/, q{
\echo started
UPDATE ver SET v = 1; SELECT 1 FROM media_reco.refresh_neighbors('r');
UPDATE ver SET v = 0; SELECT 1 FROM media_reco.refresh_neighbors('r');
UPDATE ver SET v = 1; SELECT 1 FROM media_reco.refresh_neighbors('r');
UPDATE ver SET v = 0; SELECT 1 FROM media_reco.refresh_neighbors('r');
UPDATE ver SET v = 1; SELECT 1 FROM media_reco.refresh_neighbors('r');
UPDATE ver SET v = 0; SELECT 1 FROM media_reco.refresh_neighbors('r');
UPDATE done SET flag = true;
});

# readers: any lock wait would fail on lock_timeout
my $reader = $node->background_psql('postgres', on_error_stop => 0);
$reader->query_safe(q{SET lock_timeout = '50ms'});
my (%seen, $bad, $reads, $recs_ok);
$bad = 0; $reads = 0; $recs_ok = 0;
my $deadline = time() + 240;
while (time() < $deadline)
{
	my ($out, $err) = $reader->query($read_sig);
	if ($err || !exists $valid{$out})
	{
		$bad++;
		diag("bad read: '$out' $reader->{stderr}");
		$reader->{stderr} = '';
	}
	else
	{
		$seen{ $valid{$out} }++;
	}
	my ($n, $err2) = $reader->query(qq{SELECT count(*) FROM media_reco.recommend('r', $uid, 10)});
	$recs_ok++ if !$err2 && $n eq '10';
	$reads++;
	last if $node->safe_psql('postgres', 'SELECT flag FROM done') eq 't';
}
$writer->quit;

is($bad, 0, "no empty, partial or blocked read in $reads reads");
ok($reads >= 6, "readers ran throughout the refreshes ($reads reads)");
is($recs_ok, $reads, 'recommend answered with 10 rows at every read');
ok(scalar(keys %seen) == 2, 'readers saw both versions: ' . join(', ', map { "$_ x$seen{$_}" } sort keys %seen));
is($node->safe_psql('postgres', q{SELECT count(*) FROM media_reco.refresh_history WHERE recommender = 'r'}),
	'7', 'every refresh was recorded');

# two refreshes of one recommender at once: the second waits for the first
my $a = $node->background_psql('postgres');
my $b = $node->background_psql('postgres');
$a->query_until(qr/go/, "\\echo go\nSELECT 1 FROM media_reco.refresh_neighbors('r');\n");
$b->query_until(qr/go/, "\\echo go\nSELECT 1 FROM media_reco.refresh_neighbors('r');\n");
$a->quit;
$b->quit;
is($node->safe_psql('postgres', q{
SELECT count(*) FROM (SELECT started_at, finished_at,
                             lag(finished_at) OVER (ORDER BY started_at) AS prev_finished
                        FROM media_reco.refresh_history WHERE recommender = 'r') h
 WHERE started_at < prev_finished}), '0', 'refresh runs never overlap');
is($node->safe_psql('postgres', q{SELECT count(*) FROM media_reco.refresh_history WHERE recommender = 'r'}),
	'9', 'both concurrent refreshes completed');
ok(exists $valid{ $node->safe_psql('postgres', $read_sig) }, 'final neighbour set is complete');

$node->stop;
done_testing();
