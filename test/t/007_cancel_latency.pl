# A cancel sent while a model trains lands within $CANCEL_BOUND seconds, far
# sooner than the training would end: random-forest training on two helper
# threads (train_forest and the forest_fit aggregate, many small trees, and
# train_forest with two trees that each grow for seconds) and network
# training (train_mlp).  The extension promises an interrupt check at least
# once a second in every long computation; a computation that never checked
# would only notice the cancel at its end.  A cancelled training stores no
# model, leaves the one it would replace as it was, and its session goes on.
#
# Nothing waits for a time: the training source is a view whose last,
# empty branch takes an advisory lock, so "that backend holds the lock" means
# the rows have been read and the training has begun; for forests the test
# also waits until the backend runs its helper threads (/proc/<pid>/task).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(gettimeofday tv_interval);
use MediaRecoTest;

my $READ_DONE = 5555;

my $node = PostgreSQL::Test::Cluster->new('latency');
$node->init;
$node->append_conf('postgresql.conf', "maintenance_work_mem = '3GB'");  # room for the premise's larger forests
$node->start;

# pure-noise labels, so the trees grow deep: many small trees (each well
# under the bound), thousands of seconds' worth of network epochs
$node->safe_psql('postgres', qq{
CREATE EXTENSION media_reco;
CREATE TABLE f AS
  SELECT (hashint4(g) % 1000)::float8 AS a, (hashint4(g * 3) % 1000)::float8 AS b,
         (hashint4(g * 5) % 1000)::float8 AS c, (hashint4(g * 7) % 1000)::float8 AS d,
         (hashint4(g * 11) % 1000)::float8 AS e, (hashint4(g * 13) & 1)::float8 AS y
    FROM generate_series(1, 20000) g;
CREATE FUNCTION read_done() RETURNS bool LANGUAGE plpgsql AS
  \$\$BEGIN PERFORM pg_advisory_xact_lock($READ_DONE); RETURN false; END\$\$;
-- the last branch returns no row; it runs once every row of f has been read
CREATE VIEW fsrc AS
  SELECT * FROM f
  UNION ALL
  SELECT NULL, NULL, NULL, NULL, NULL, NULL WHERE read_done();
});

my $FOREST = q{'{"n_trees": 800, "seed": 1}'};
my $MLP = q{'{"hidden": [128, 128], "epochs": 150, "patience": 10000, "seed": 1}'};
my %sql = (
	'train_forest' => "SELECT rows FROM media_reco.train_forest('m', 'fsrc', 'y', NULL, $FOREST);",
	'forest_fit' => "SELECT length(media_reco.forest_fit(ARRAY[a, b, c, d, e], y, $FOREST)) FROM fsrc;",
	'train_mlp' => "SELECT rows FROM media_reco.train_mlp('n', 'fsrc', 'y', NULL, $MLP);");

my $ctl = $node->background_psql('postgres', on_error_stop => 1);

# Start $sql in a background session with $threads helper threads and
# return (session, pid) once the source has been read (and, with threads,
# once the helper threads run).
sub start_training
{
	my ($sql, $threads) = @_;
	my $s = $node->background_psql('postgres', on_error_stop => 0);
	my $pid = $s->query_safe("SET media_reco.threads = $threads; SELECT pg_backend_pid()");
	$s->query_until(qr/go/, "\\echo go\n$sql\n");
	$node->poll_query_until('postgres', qq{
SELECT EXISTS (SELECT 1 FROM pg_locks WHERE pid = $pid AND locktype = 'advisory' AND granted
                  AND objid = $READ_DONE AND classid = 0 AND objsubid = 1)})
	  or die "the training never finished reading its source";
	if ($threads > 1)
	{
		# (or the statement is over: then the check below fails loudly)
		$node->poll_query_until('postgres', qq{
SELECT (SELECT count(*) FROM pg_ls_dir('/proc/$pid/task')) >= 2
    OR (SELECT state FROM pg_stat_activity WHERE pid = $pid) <> 'active'})
		  or die "no helper thread appeared";
		ok($node->safe_psql('postgres', qq{SELECT count(*) FROM pg_ls_dir('/proc/$pid/task')}) >= 2,
			"$sql runs helper threads");
	}
	return ($s, $pid);
}

# cancel it there, and check how fast the error arrives
sub check_cancel
{
	my ($what, $threads) = @_;
	my ($s, $pid) = start_training($sql{$what}, $threads);
	my $latency = time_until_output($ctl, "SELECT pg_cancel_backend($pid)", $s, 'stderr',
		qr/canceling statement due to user request/, "the cancel of $what to land");
	ok($latency <= $CANCEL_BOUND,
		sprintf('%s (threads = %d): pg_cancel_backend during the training landed in %.2f s (bound %.1f s)',
			$what, $threads, $latency, $CANCEL_BOUND));
	my ($out) = $s->query(q{SELECT 'alive'});
	like($out, qr/alive/, "$what: the cancelled session keeps working");
	$s->quit;
	return;
}

# the premise: how long each training takes uncancelled, with the same
# threads; forest_fit runs the same training as train_forest on the same rows
sub uncancelled_seconds
{
	my ($what, $threads) = @_;
	my $t0 = [gettimeofday()];
	$node->safe_psql('postgres', "SET media_reco.threads = $threads; $sql{$what}");
	return sprintf('%.2f', tv_interval($t0));
}

# The premise must not depend on how fast the machine is: while the
# uncancelled run is shorter than twice the bound, $grow->($round) makes the
# work larger (more trees, epochs or rows) and it is measured again.
sub premise
{
	my ($what, $threads, $label, $grow) = @_;
	my $seconds;
	for my $round (1 .. 5)
	{
		$seconds = uncancelled_seconds($what, $threads);
		last if $seconds >= 2 * $CANCEL_BOUND || $round == 5;
		$grow->($round);
		note "$label: $seconds s in round $round, too short: more work";
	}
	check_premise($seconds, $label);
	return;
}
sub double_option
{
	my ($key) = @_;
	s/"$key": (\d+)/'"' . $key . '": ' . 2 * $1/e for values %sql;
	return;
}

premise('train_forest', 2, 'forest training (2 threads)', sub { double_option('n_trees') });
# the premise's model stays: the cancelled training would have replaced it
my $stored_m = q{SELECT md5(model) || ' ' || trained_at FROM media_reco.models WHERE name = 'm'};
my $before = $node->safe_psql('postgres', $stored_m);
check_cancel('train_forest', 2);
is($node->safe_psql('postgres', $stored_m), $before,
	'a cancelled train_forest leaves the model it would replace as it was');
check_cancel('forest_fit', 2);

premise('train_mlp', 1, 'network training', sub { double_option('epochs') });
$node->safe_psql('postgres', q{SELECT media_reco.drop_model('n')});
check_cancel('train_mlp', 1);
is($node->safe_psql('postgres', q{SELECT count(*) FROM media_reco.models WHERE name = 'n'}), '0',
	'a cancelled train_mlp stores no model');

# A forest of two large trees on two threads: each tree grows for seconds,
# longer than the bound, so a cancel lands in time only because the trees
# themselves poll (forest_core.c: the main thread at every node and every
# feature tried, the helper threads through the run's pause flag), not just
# parallel.c between trees.  The premise: the uncancelled training, whose
# wall time is about that of one tree, takes at least twice the bound.
$node->safe_psql('postgres', qq{
CREATE TABLE fb AS
  SELECT (hashint4(g) % 100000)::float8 AS a, (hashint4(g * 3) % 100000)::float8 AS b,
         (hashint4(g * 5) % 1000)::float8 AS c, (hashint4(g * 13) & 1)::float8 AS y
    FROM generate_series(1, 2000000) g;
CREATE VIEW fbsrc AS
  SELECT * FROM fb
  UNION ALL
  SELECT NULL, NULL, NULL, NULL WHERE read_done();
});
$sql{big_trees} = q{SELECT rows FROM media_reco.train_forest('mb', 'fbsrc', 'y', NULL, '{"n_trees": 2, "max_features": "all", "seed": 1}');};
premise('big_trees', 2, 'training of two big trees (2 threads)', sub {
	my ($round) = @_;
	$node->safe_psql('postgres', qq{
INSERT INTO fb SELECT (hashint4(g) % 100000)::float8, (hashint4(g * 3) % 100000)::float8,
                      (hashint4(g * 5) % 1000)::float8, (hashint4(g * 13) & 1)::float8
  FROM generate_series(2000000 * $round + 1, 2000000 * ($round + 1)) g;});
});
$node->safe_psql('postgres', q{SELECT media_reco.drop_model('mb')});
check_cancel('big_trees', 2);
is($node->safe_psql('postgres', q{SELECT count(*) FROM media_reco.models WHERE name = 'mb'}), '0',
	'a cancelled big-tree train_forest stores no model');

$ctl->quit;
$node->stop;
done_testing();
