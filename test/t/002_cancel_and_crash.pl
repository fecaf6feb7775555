# A refresh that is cancelled (statement_timeout, pg_cancel_backend) or whose
# server crashes leaves the old neighbour table intact and usable; the
# cancelled session itself keeps working (helper threads were joined), and a
# cancel sent during the threaded computation lands within $CANCEL_BOUND
# seconds, far sooner than the computation would end.
#
# Nothing here waits for a time.  Each case first brings the refresh to a
# known point: blocked on an advisory lock that the test holds (the source
# view takes it while it is read, a trigger on refresh_history takes it after
# the new lists are written), or inside the computation (the refresh's "read
# ... interactions" NOTICE has arrived and its "computed" NOTICE has not).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(gettimeofday tv_interval);
use MediaRecoTest;

my $node = PostgreSQL::Test::Cluster->new('cancel');
$node->init;
$node->append_conf('postgresql.conf', "maintenance_work_mem = '1GB'\nrestart_after_crash = on");
$node->start;

# locks the test holds to stop a refresh at a known point
my $GATE_READ = 4242;     # taken by the source view while it is read
my $GATE_WRITTEN = 4243;  # taken by the history insert, after the new lists are written

$node->safe_psql('postgres', qq{
CREATE EXTENSION media_reco;
CREATE TABLE small AS SELECT * FROM media_reco.synthetic_interactions(2000, 500, 20000, 1);
CREATE TABLE medium AS SELECT * FROM media_reco.synthetic_interactions(2000, 500, 20000, 2);
-- dense: 1000 users with 3000 of 6000 items each, so the item-item
-- computation (~ users x items per user ^ 2) takes seconds while the read
-- takes a fraction of one
CREATE TABLE big AS SELECT u AS user_id, i AS item_id
  FROM generate_series(1, 1000) u, generate_series(1, 6000) i
 WHERE hashint4(u * 7919 + i) & 1 = 0;
CREATE TABLE which (v text NOT NULL);
INSERT INTO which VALUES ('small');
CREATE FUNCTION read_gate() RETURNS bool LANGUAGE plpgsql AS
  \$\$BEGIN PERFORM pg_advisory_xact_lock_shared($GATE_READ); RETURN true; END\$\$;
-- the recommender's source is a view that can be switched between the tables
CREATE VIEW src AS SELECT * FROM (
  SELECT user_id, item_id FROM small WHERE (SELECT v FROM which) = 'small'
  UNION ALL
  SELECT user_id, item_id FROM medium WHERE (SELECT v FROM which) = 'medium'
  UNION ALL
  SELECT user_id, item_id FROM big WHERE (SELECT v FROM which) = 'big') s
 WHERE (SELECT read_gate());
CREATE FUNCTION written_gate() RETURNS trigger LANGUAGE plpgsql AS
  \$\$BEGIN PERFORM pg_advisory_xact_lock_shared($GATE_WRITTEN); RETURN NEW; END\$\$;
CREATE TRIGGER written_gate BEFORE INSERT ON media_reco.refresh_history
  FOR EACH ROW EXECUTE FUNCTION written_gate();
SELECT media_reco.create_recommender('r', 'src', k => 20);
SELECT 1 FROM media_reco.refresh_neighbors('r');
});

my $sig_sql = q{SELECT count(*) || ':' || round(sum(similarity)::numeric, 6)
  FROM media_reco.item_neighbors WHERE recommender = 'r'};
my $old = $node->safe_psql('postgres', $sig_sql);
like($old, qr/^\d+:/, "old neighbour set: $old");

# One uncancelled refresh of the big source: the reference for the
# non-error-interrupt case below, and the premise of the latency checks.
# Run in a transaction that is rolled back, so the old set stays.  The
# premise must not depend on how fast the machine is: while the computation
# takes less than twice the cancel bound, the big source gets another 1000
# users like the first (the work grows with the users), and is measured again.
my ($ret, $stdout, $stderr, $big_sig, $read_s, $compute_s);
for my $round (1 .. 6)
{
	($ret, $stdout, $stderr) = $node->psql('postgres', q{
UPDATE which SET v = 'big';
SET media_reco.threads = 2;
BEGIN;
SELECT 1 FROM media_reco.refresh_neighbors('r');
SELECT count(*) || ':' || round(sum(similarity)::numeric, 6) FROM media_reco.item_neighbors WHERE recommender = 'r';
ROLLBACK;}, on_error_stop => 1);
	is($ret, 0, "an uncancelled refresh of the big source completes (round $round)");
	($big_sig) = $stdout =~ /^(\d+:[0-9.]+)$/m;
	$read_s = phase_seconds($stderr, 'read');
	$compute_s = phase_seconds($stderr, 'computed');
	note "big source, round $round: read in $read_s s, computed in $compute_s s, neighbour set $big_sig";
	last if $compute_s >= 2 * $CANCEL_BOUND || $round == 6;
	$node->safe_psql('postgres', qq{
INSERT INTO big SELECT u + 1000 * $round, i FROM generate_series(1, 1000) u, generate_series(1, 6000) i
 WHERE hashint4(u * 7919 + i + $round) & 1 = 0;});
}
check_premise($compute_s, 'item-similarity computation');
is($node->safe_psql('postgres', $sig_sql), $old, 'the rolled-back refresh left the old set');

# (the history is read live, so this is taken with the source already switched)
my $old_recs = $node->safe_psql('postgres', q{SELECT string_agg(item_id::text, ',' ORDER BY rank) FROM media_reco.recommend('r', 3)});
my $hist0 = $node->safe_psql('postgres', q{SELECT count(*) FROM media_reco.refresh_history WHERE recommender = 'r'});

# a session that holds the gates and sends the signals
my $ctl = $node->background_psql('postgres', on_error_stop => 1);

# Start `SELECT <what> FROM refresh_neighbors('r')` in a background session
# with two helper threads; returns the session and its backend's pid.
sub start_refresh
{
	my ($what) = @_;
	my $session = $node->background_psql('postgres', on_error_stop => 0);
	my $backend = $session->query_safe('SET media_reco.threads = 2; SELECT pg_backend_pid()');
	$session->query_until(qr/go/, "\\echo go\nSELECT $what FROM media_reco.refresh_neighbors('r');\n");
	return ($session, $backend);
}

# ... and return once it is inside the item-similarity computation
sub start_refresh_computing
{
	my ($what) = @_;
	my ($session, $backend) = start_refresh($what);
	wait_output($session, 'stderr', qr/recommender "r": read \d+ interactions/, 'the read phase to end');
	return ($session, $backend);
}

my $read_notice = qr/recommender "r": read \d+ interactions/;
my $computed_notice = qr/recommender "r": computed \d+ neighbour pairs/;

# statement_timeout while the source is being read (blocked on the read gate)
$ctl->query_safe("SELECT pg_advisory_lock($GATE_READ)");
($ret, $stdout, $stderr) = $node->psql('postgres', q{
SET statement_timeout = '200ms';
SELECT 1 FROM media_reco.refresh_neighbors('r');
RESET statement_timeout;
SELECT 'alive', count(*) FROM media_reco.similar_items('r', 1);}, on_error_stop => 0);
$ctl->query_safe("SELECT pg_advisory_unlock($GATE_READ)");
like($stderr, qr/canceling statement due to statement timeout/, 'statement_timeout cancels a refresh while it reads');
unlike($stderr, $read_notice, 'the timeout landed before the read finished');
like($stdout, qr/alive/, 'session still works after a cancel in the read');
is($node->safe_psql('postgres', $sig_sql), $old, 'old neighbours intact after a cancel in the read');

# statement_timeout inside the computation: aimed at its middle from the
# phases measured above; the NOTICEs tell where it landed, and a timeout that
# missed the computation (a machine much slower or faster this time) is aimed
# again, up to three times.
{
	my ($hit, $latency, $t_ms);
	my ($aim_read, $aim_compute) = ($read_s, $compute_s);
	for my $attempt (1 .. 3)
	{
		$t_ms = int(1000 * ($aim_read + $aim_compute / 2));
		my $t0 = [gettimeofday()];
		($ret, $stdout, $stderr) = $node->psql('postgres', qq{
SET media_reco.threads = 2;
SET statement_timeout = '${t_ms}ms';
BEGIN;
SELECT 1 FROM media_reco.refresh_neighbors('r');
ROLLBACK;
RESET statement_timeout;
SELECT 'alive', count(*) FROM media_reco.similar_items('r', 1);}, on_error_stop => 0);
		my $elapsed = tv_interval($t0);
		if ($stderr =~ /canceling statement due to statement timeout/
			&& $stderr =~ $read_notice && $stderr !~ $computed_notice)
		{
			$hit = 1;
			$latency = $elapsed - $t_ms / 1000;
			last;
		}
		diag("attempt $attempt: a statement_timeout of $t_ms ms missed the computation; stderr: $stderr");
		# re-aim from this attempt's phases (a read that did not end: twice as long)
		my $r = phase_seconds($stderr, 'read');
		my $c = phase_seconds($stderr, 'computed');
		$aim_read = defined $r ? $r : 2 * $t_ms / 1000;
		$aim_compute = $c if defined $c;
	}
	ok($hit, "statement_timeout ($t_ms ms) landed inside the computation");
	ok(defined $latency && $latency <= $CANCEL_BOUND,
		sprintf('and ended the statement %.2f s after it fired (bound %.1f s)', $latency // -1, $CANCEL_BOUND));
	like($stdout, qr/alive/, 'session still works after a timeout in the computation');
	is($node->safe_psql('postgres', $sig_sql), $old, 'old neighbours intact after a timeout in the computation');
}

# pg_cancel_backend from another session, inside the computation
my ($bg, $pid) = start_refresh_computing('1');
my $latency = time_until_output($ctl, "SELECT pg_cancel_backend($pid)", $bg, 'stderr',
	qr/canceling statement due to user request/, 'the cancel to land');
ok($latency <= $CANCEL_BOUND,
	sprintf('pg_cancel_backend inside the computation landed in %.2f s (bound %.1f s)', $latency, $CANCEL_BOUND));
unlike($bg->{stderr}, $computed_notice, 'before the computation ended');
my ($out, $err) = $bg->query(q{SELECT 'after cancel'});
like($out, qr/after cancel/, 'cancelled session keeps working');
$bg->quit;
is($node->safe_psql('postgres', $sig_sql), $old, 'old neighbours intact after pg_cancel_backend');

# a crash inside the computation: kill -9 the backend (the postmaster restarts)
($bg, $pid) = start_refresh_computing('1');
kill 'KILL', $pid;
eval { $bg->quit; };
$node->poll_query_until('postgres', 'SELECT true') or die 'server did not come back';
is($node->safe_psql('postgres', $sig_sql), $old, 'old neighbours intact after a backend crash');
is($node->safe_psql('postgres', q{SELECT string_agg(item_id::text, ',' ORDER BY rank) FROM media_reco.recommend('r', 3)}),
	$old_recs, 'recommend answers as before the crash');
# (the crash ended every session, the control session too)
eval { $ctl->quit; };

# an immediate shutdown (no checkpoint) after the new lists are written but
# before the refresh commits, then recovery from WAL
$node->safe_psql('postgres', q{UPDATE which SET v = 'medium'});
$ctl = $node->background_psql('postgres', on_error_stop => 1);
$ctl->query_safe("SELECT pg_advisory_lock($GATE_WRITTEN)");
($bg, $pid) = start_refresh('1');
wait_lock_wait($node, $pid, $GATE_WRITTEN, 'the history insert after the write');
wait_output($bg, 'stderr', qr/recommender "r": wrote \d+ items/, 'the write NOTICE');
$node->stop('immediate');
eval { $bg->quit; };
eval { $ctl->quit; };
$node->start;
is($node->safe_psql('postgres', $sig_sql), $old, 'old neighbours intact after an immediate shutdown');

# and the recommender still refreshes normally afterwards
my $new = $node->safe_psql('postgres', q{SELECT pairs FROM media_reco.refresh_neighbors('r')});
ok($new > 0, "a later refresh succeeds ($new pairs)");
isnt($node->safe_psql('postgres', $sig_sql), $old, 'and replaces the old set');
is($node->safe_psql('postgres', q{SELECT count(*) FROM media_reco.refresh_history WHERE recommender = 'r'}),
	$hist0 + 1, 'only completed refreshes are in the history');

# Interrupts that are not errors (here: memory-context logging requests)
# pause the threaded computation, get processed, and the refresh carries on
# to the same result.  Each request is sent once the previous one has been
# processed (its log line is there), all inside the computation.
$node->safe_psql('postgres', q{UPDATE which SET v = 'big'});
$ctl = $node->background_psql('postgres', on_error_stop => 1);
($bg, $pid) = start_refresh_computing(q{'refreshed', pairs});
my $log_offset = -s $node->logfile;
my $slowest = 0;
for my $i (1 .. 5)
{
	my $t0 = [gettimeofday()];
	$ctl->query_safe("SELECT pg_log_backend_memory_contexts($pid)");
	$log_offset = $node->wait_for_log(qr/logging memory contexts of PID $pid/, $log_offset);
	my $t = tv_interval($t0);
	$slowest = $t if $t > $slowest;
}
$bg->{run}->pump_nb();
unlike($bg->{stderr}, $computed_notice, 'five memory-context requests were processed inside the computation');
ok($slowest <= $CANCEL_BOUND, sprintf('each within %.2f s (bound %.1f s)', $slowest, $CANCEL_BOUND));
($out, $err) = $bg->query(q{SELECT 'done'});
like($out, qr/refreshed\|\d+/, 'refresh completed despite non-error interrupts');
unlike($bg->{stderr}, qr/ERROR/, 'without any error');
my $compute2_s = phase_seconds($bg->{stderr}, 'computed');
note "the computation with interrupts took $compute2_s s";
$bg->quit;
$ctl->quit;
is($node->safe_psql('postgres', $sig_sql), $big_sig, 'and produced the same neighbour set as an uninterrupted refresh');

$node->stop;
done_testing();
