# A refresh that is cancelled (statement_timeout, pg_cancel_backend) or whose
# server crashes leaves the old neighbour table intact and usable; the
# cancelled session itself keeps working (helper threads were joined).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes;

my $node = PostgreSQL::Test::Cluster->new('cancel');
$node->init;
$node->append_conf('postgresql.conf', "maintenance_work_mem = '1GB'\nrestart_after_crash = on");
$node->start;

$node->safe_psql('postgres', q{
CREATE EXTENSION media_reco;
CREATE TABLE small AS SELECT * FROM media_reco.synthetic_interactions(2000, 500, 20000, 1);
CREATE INDEX ON small (user_id);
-- the recommender's source is a view that can be switched to a much bigger table
CREATE TABLE big AS SELECT * FROM media_reco.synthetic_interactions(100000, 20000, 3000000, 2);
CREATE TABLE which (big bool NOT NULL);
INSERT INTO which VALUES (false);
CREATE VIEW src AS
  SELECT user_id, item_id FROM small WHERE NOT (SELECT big FROM which)
  UNION ALL
  SELECT user_id, item_id FROM big WHERE (SELECT big FROM which);
SELECT media_reco.create_recommender('r', 'src', k => 20);
SELECT 1 FROM media_reco.refresh_neighbors('r');
});

my $sig_sql = q{SELECT count(*) || ':' || round(sum(similarity)::numeric, 6)
  FROM media_reco.item_neighbors WHERE recommender = 'r'};
my $old = $node->safe_psql('postgres', $sig_sql);
like($old, qr/^\d+:/, "old neighbour set: $old");
$node->safe_psql('postgres', 'UPDATE which SET big = true');
# (the history is read live, so this is taken with the source already switched)
my $old_recs = $node->safe_psql('postgres', q{SELECT string_agg(item_id::text, ',' ORDER BY rank) FROM media_reco.recommend('r', 3)});

# how long the big computation takes here, to aim the timeouts at its phases
my $t0 = [Time::HiRes::gettimeofday()];
$node->safe_psql('postgres', q{SELECT count(*) FROM media_reco.item_similarity('src', k => 20)});
my $full_ms = int(1000 * Time::HiRes::tv_interval($t0));
note "a full computation takes about $full_ms ms";

# statement_timeout at several points: reading, computing (threads), writing
for my $frac (0.1, 0.35, 0.6, 0.85)
{
	my $ms = int($full_ms * $frac) + 1;
	my ($ret, $stdout, $stderr) = $node->psql('postgres', qq{
SET media_reco.threads = 2;
SET statement_timeout = '${ms}ms';
SELECT 1 FROM media_reco.refresh_neighbors('r');
RESET statement_timeout;
SELECT 'alive', count(*) FROM media_reco.similar_items('r', 1);}, on_error_stop => 0);
	if ($stderr =~ /canceling statement due to statement timeout/)
	{
		like($stdout, qr/alive/, "session still works after a cancel at ${ms} ms");
		is($node->safe_psql('postgres', $sig_sql), $old, "old neighbours intact after a cancel at ${ms} ms");
	}
	else
	{
		# the machine was fast enough to finish: restore the old set for the next round
		pass("refresh finished within ${ms} ms");
		pass("nothing to check");
		$node->safe_psql('postgres', q{UPDATE which SET big = false; SELECT 1 FROM media_reco.refresh_neighbors('r'); UPDATE which SET big = true;});
	}
}

my $hist0 = $node->safe_psql('postgres', q{SELECT count(*) FROM media_reco.refresh_history WHERE recommender = 'r'});

# Start `SELECT <what> FROM refresh_neighbors('r')` in a background session;
# with $running_ms, return once it has been running that long.
sub start_refresh
{
	my ($what, $running_ms) = @_;
	my $session = $node->background_psql('postgres', on_error_stop => 0);
	my $backend = $session->query_safe('SELECT pg_backend_pid()');

	$session->query_until(qr/go/, "\\echo go\nSELECT $what FROM media_reco.refresh_neighbors('r');\n");
	if (defined $running_ms)
	{
		$node->poll_query_until('postgres',
			qq{SELECT count(*) = 1 FROM pg_stat_activity WHERE pid = $backend AND state = 'active'
                 AND query LIKE '%refresh_neighbors%'
                 AND now() - query_start > interval '$running_ms ms'})
		  or die 'refresh did not start';
	}
	return ($session, $backend);
}

# pg_cancel_backend from another session, while the refresh is running
my ($bg, $pid) = start_refresh('1', 300);
$node->safe_psql('postgres', "SELECT pg_cancel_backend($pid)");
my ($out, $err) = $bg->query(q{SELECT 'after cancel'});
like($bg->{stderr}, qr/canceling statement due to user request/, 'refresh was cancelled by pg_cancel_backend');
like($out, qr/after cancel/, 'cancelled session keeps working');
$bg->quit;
is($node->safe_psql('postgres', $sig_sql), $old, 'old neighbours intact after pg_cancel_backend');

# a crash in the middle of a refresh: kill -9 the backend (the postmaster restarts)
($bg, $pid) = start_refresh('1', 500);
kill 'KILL', $pid;
eval { $bg->quit; };
$node->poll_query_until('postgres', 'SELECT true') or die 'server did not come back';
is($node->safe_psql('postgres', $sig_sql), $old, 'old neighbours intact after a backend crash');
is($node->safe_psql('postgres', q{SELECT string_agg(item_id::text, ',' ORDER BY rank) FROM media_reco.recommend('r', 3)}),
	$old_recs, 'recommend answers as before the crash');

# an immediate shutdown mid-refresh (no checkpoint), then recovery from WAL
($bg) = start_refresh('1');
sleep 1;
$node->stop('immediate');
eval { $bg->quit; };
$node->start;
is($node->safe_psql('postgres', $sig_sql), $old, 'old neighbours intact after an immediate shutdown');

# and the recommender still refreshes normally afterwards
my $new = $node->safe_psql('postgres', q{SELECT pairs FROM media_reco.refresh_neighbors('r')});
ok($new > 0, "a later refresh succeeds ($new pairs)");
isnt($node->safe_psql('postgres', $sig_sql), $old, 'and replaces the old set');
is($node->safe_psql('postgres', q{SELECT count(*) FROM media_reco.refresh_history WHERE recommender = 'r'}),
	$hist0 + 1, 'only completed refreshes are in the history');

# interrupts that are not errors (here: memory-context logging requests) pause
# the threaded computation, get processed, and the refresh carries on to the
# same result
my $big = $node->safe_psql('postgres', $sig_sql);
($bg, $pid) = start_refresh(q{'refreshed', pairs}, 200);
for (1 .. 20)
{
	$node->safe_psql('postgres', "SELECT pg_log_backend_memory_contexts($pid)");
	select(undef, undef, undef, 0.05);
}
($out, $err) = $bg->query(q{SELECT 'done'});
like($out, qr/refreshed\|\d+/, 'refresh completed despite non-error interrupts');
unlike($bg->{stderr}, qr/ERROR/, 'without any error');
$bg->quit;
is($node->safe_psql('postgres', $sig_sql), $big, 'and produced the same neighbour set');

$node->stop;
done_testing();
