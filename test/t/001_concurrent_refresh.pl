# Readers during refresh_neighbors see the complete old or the complete new
# neighbour set, never an empty or mixed one, and never wait on a lock;
# two refreshes of one recommender never interleave.  The refreshes are held
# at known points with advisory locks, so nothing depends on timing.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use MediaRecoTest;

my $GATE_WRITTEN = 4243;    # taken by the history insert, after the new lists are written

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
-- a refresh that has written its lists waits here while the test holds the lock
CREATE FUNCTION written_gate() RETURNS trigger LANGUAGE plpgsql AS
  $$BEGIN PERFORM pg_advisory_xact_lock_shared(4243); RETURN NEW; END$$;
CREATE TRIGGER written_gate BEFORE INSERT ON media_reco.refresh_history
  FOR EACH ROW EXECUTE FUNCTION written_gate();
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

# Six refreshes alternate the data version.  Each is stopped after it has
# deleted the old lists and written the new ones, before it commits (a
# trigger on refresh_history waits for an advisory lock the test holds):
# readers must then see the complete old set without waiting, and the
# complete new one once it has committed.
my $ctl = $node->background_psql('postgres', on_error_stop => 1);
my $writer = $node->background_psql('postgres', on_error_stop => 1);
my $writer_pid = $writer->query_safe('SELECT pg_backend_pid()');
my $reader = $node->background_psql('postgres', on_error_stop => 0);
$reader->query_safe(q{SET lock_timeout = '50ms'});

# a read: the neighbour-set signature and a recommendation of 10 items
sub read_state
{
	my ($out, $err) = $reader->query($read_sig);
	my ($n, $err2) = $reader->query(qq{SELECT count(*) FROM media_reco.recommend('r', $uid, 10)});
	my $bad = $err || $err2 ? $reader->{stderr} : '';
	$reader->{stderr} = '';
	return ($valid{$out} // "invalid '$out'", $n, $bad);
}

my (%seen, $reads);
$reads = 0;
my $version = 0;
for my $i (1 .. 6)
{
	my $before = "version $version";
	$version = 1 - $version;
	$ctl->query_safe("SELECT pg_advisory_lock($GATE_WRITTEN)");
	$writer->query_until(qr/go $i/, "\\echo go $i\nUPDATE ver SET v = $version; SELECT 1 FROM media_reco.refresh_neighbors('r');\n\\echo done $i\n");
	wait_lock_wait($node, $writer_pid, $GATE_WRITTEN, "refresh $i written");
	for my $j (1 .. 3)
	{
		my ($seen, $n, $bad) = read_state();
		$reads++;
		$seen{$seen}++;
		is("$seen $n $bad", "$before 10 ", "refresh $i written, uncommitted: read $j sees the complete $before, 10 recommendations, no wait");
	}
	$ctl->query_safe("SELECT pg_advisory_unlock($GATE_WRITTEN)");
	wait_output($writer, 'stdout', qr/done $i/, "refresh $i to commit");
	my ($seen, $n, $bad) = read_state();
	$reads++;
	$seen{$seen}++;
	is("$seen $n $bad", "version $version 10 ", "refresh $i committed: the reader sees the complete version $version");
}
$writer->quit;
is(join(', ', map { "$_ x$seen{$_}" } sort keys %seen), 'version 0 x12, version 1 x12',
	"the $reads reads saw each version whole, 12 times");
is($node->safe_psql('postgres', q{SELECT count(*) FROM media_reco.refresh_history WHERE recommender = 'r'}),
	'7', 'every refresh was recorded');

# two refreshes of one recommender at once: the second waits for the first
# (the first is held after its write until the second is waiting)
my $a = $node->background_psql('postgres');
my $b = $node->background_psql('postgres');
my $a_pid = $a->query_safe('SELECT pg_backend_pid()');
my $b_pid = $b->query_safe('SELECT pg_backend_pid()');
$ctl->query_safe("SELECT pg_advisory_lock($GATE_WRITTEN)");
$a->query_until(qr/go/, "\\echo go\nSELECT 1 FROM media_reco.refresh_neighbors('r');\n\\echo done a\n");
wait_lock_wait($node, $a_pid, $GATE_WRITTEN, 'the first refresh written');
$b->query_until(qr/go/, "\\echo go\nSELECT 1 FROM media_reco.refresh_neighbors('r');\n\\echo done b\n");
ok($node->poll_query_until('postgres', qq{
SELECT wait_event_type = 'Lock' AND wait_event <> 'advisory' AND query LIKE '%refresh_neighbors%'
  FROM pg_stat_activity WHERE pid = $b_pid}),
	'the second refresh waits for the first one\'s lock (not for the test\'s gate)');
$ctl->query_safe("SELECT pg_advisory_unlock($GATE_WRITTEN)");
wait_output($a, 'stdout', qr/done a/, 'the first refresh to end');
wait_output($b, 'stdout', qr/done b/, 'the second refresh to end');
$a->quit;
$b->quit;
$ctl->quit;
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
