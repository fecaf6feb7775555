# Helpers for the TAP tests: wait for a *state* (a lock wait, a progress
# NOTICE, a log line), never for a time, and measure how fast an interrupt
# lands.  Use with `use FindBin; use lib "$FindBin::Bin/lib";`.
package MediaRecoTest;
use strict;
use warnings;
use Exporter 'import';
use Time::HiRes qw(gettimeofday tv_interval);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

our @EXPORT = qw($CANCEL_BOUND wait_output wait_lock_wait time_until_output
  check_premise phase_seconds citus_cluster);

# The extension promises that every long computation checks for interrupts
# at least once a second; a cancel must land within this many seconds of
# being sent (the slack covers a loaded machine and the round trips).
our $CANCEL_BOUND = 2.5;

# Pump background session $bg until its stdout or stderr ($stream) matches
# $re; dies (naming $what) if psql exits or the default timeout expires.
sub wait_output
{
	my ($bg, $stream, $re, $what) = @_;
	$bg->{timeout}->start($PostgreSQL::Test::Utils::timeout_default);
	pump_until($bg->{run}, $bg->{timeout}, \$bg->{$stream}, $re)
	  or die "gave up waiting for $what";
	return;
}

# Return once backend $pid waits for advisory lock $key (a lock that the
# test holds), i.e. once it provably stands at that point of its work.
sub wait_lock_wait
{
	my ($node, $pid, $key, $what) = @_;
	$node->poll_query_until('postgres', qq{
SELECT EXISTS (SELECT 1 FROM pg_locks
                WHERE pid = $pid AND locktype = 'advisory' AND NOT granted
                  AND objid = $key AND classid = 0 AND objsubid = 1)})
	  or die "backend $pid never waited for advisory lock $key ($what)";
	return;
}

# Run $sql in control session $ctl (e.g. pg_cancel_backend) and return the
# seconds until $bg's $stream matches $re.
sub time_until_output
{
	my ($ctl, $sql, $bg, $stream, $re, $what) = @_;
	my $t0 = [gettimeofday()];
	$ctl->query_safe($sql);
	wait_output($bg, $stream, $re, $what);
	return tv_interval($t0);
}

# The latency checks only mean something if the uncancelled computation
# takes much longer than the bound: a computation that never checked for
# interrupts would then blow the bound.  Fails loudly when it does not hold.
sub check_premise
{
	my ($seconds, $what) = @_;
	my $need = 2 * $CANCEL_BOUND;
	ok($seconds >= $need,
		"premise: the uncancelled $what takes $seconds s, at least $need s (2 x the cancel bound)")
	  or diag("The $what finished too fast for its cancel-latency checks to catch a computation "
		  . "that never checks for interrupts: enlarge its data set in this test.");
	return;
}

# Seconds that a refresh's progress NOTICE reports for a phase
# ('read' or 'computed'), from psql's stderr; undef when it is absent.
sub phase_seconds
{
	my ($stderr, $phase) = @_;
	return $1 if $stderr =~ /recommender "[^"]*": $phase [^\n]* in ([0-9.]+) s/;
	return undef;
}

# A Citus coordinator and two workers on this machine (6 shards, 3 per
# worker), citus created in each and the workers added; $extra_conf goes
# into every node's postgresql.conf.  Returns ($coordinator, $w1, $w2).
sub citus_cluster
{
	my ($extra_conf) = @_;
	my @nodes;
	for my $name (qw(coordinator worker1 worker2))
	{
		my $n = PostgreSQL::Test::Cluster->new($name);
		$n->init;
		$n->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'citus'
max_connections = 60
citus.shard_count = 6
citus.shard_replication_factor = 1
} . ($extra_conf // ''));
		$n->start;
		$n->safe_psql('postgres', 'CREATE EXTENSION citus');
		push @nodes, $n;
	}
	my ($coord, $w1, $w2) = @nodes;
	$coord->safe_psql('postgres', sprintf(q{
SELECT pg_catalog.citus_set_coordinator_host('%s', %d);
SELECT pg_catalog.citus_add_node('%s', %d);
SELECT pg_catalog.citus_add_node('%s', %d);
}, $coord->host, $coord->port, $w1->host, $w1->port, $w2->host, $w2->port));
	return @nodes;
}

1;
