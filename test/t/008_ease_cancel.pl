# An EASE refresh at 10,000 items (one 800 MB dense matrix) is cancellable:
# a pg_cancel_backend or statement_timeout during its factor or its inverse
# lands within $EASE_BOUND seconds, with one helper thread and with two,
# leaves the old neighbour lists exactly as they were, and the session keeps
# working (the helper threads were joined).
#
# Nothing here waits for a time.  A refresh is known to be in its factor
# once its "ease gram phase" NOTICE has arrived (the factor starts right
# after it), and in its inverse once its "ease factor phase" NOTICE has;
# the NOTICEs of the later phases tell whether the cancel landed before
# they ended.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(gettimeofday tv_interval);
use MediaRecoTest;

# issue 10: "returns within 1 second at 10,000 items"
my $EASE_BOUND = 1.0;
my $ITEMS = 10000;

my $node = PostgreSQL::Test::Cluster->new('ease_cancel');
$node->init;
$node->append_conf('postgresql.conf', "maintenance_work_mem = '2GB'");
$node->start;

# 20,000 users with 50 hashed draws each over 10,000 items: ~1M rows, every item used
$node->safe_psql('postgres', qq{
CREATE EXTENSION media_reco;
CREATE TABLE src AS
  SELECT u AS user_id, (hashint4(u * 64 + k) & 2147483647) % $ITEMS + 1 AS item_id
    FROM generate_series(1, 20000) u, generate_series(1, 50) k;
CREATE INDEX ON src (user_id, item_id);
SELECT media_reco.create_recommender('e', 'src', metric => 'ease', k => 20);
-- 300 items: two tiles, so a small EASE run after a cancel uses the tiled BLAS path again
CREATE TABLE small AS SELECT * FROM src WHERE item_id <= 300;
});
is($node->safe_psql('postgres', 'SELECT count(DISTINCT item_id) FROM src'), $ITEMS, "the source covers $ITEMS items");

my $sig_sql = q{SELECT count(*) || ':' || md5(string_agg(item_id || ':' || neighbor_id || '=' || similarity || '/' || support,
  ',' ORDER BY item_id, rank)) FROM media_reco.item_neighbors WHERE recommender = 'e'};

my $gram_notice = qr/recommender "e": ease gram phase over $ITEMS items/;
my $factor_notice = qr/recommender "e": ease factor phase over $ITEMS items/;
my $invert_notice = qr/recommender "e": ease invert phase over $ITEMS items/;
my $cancelled = qr/canceling statement due to user request/;

# The first, uncancelled refresh: the old lists every cancel must leave, and
# the phase times that tell whether the latency checks mean anything.
my ($ret, $stdout, $stderr) = $node->psql('postgres',
	'SET media_reco.threads = 2; SELECT items, pairs FROM media_reco.refresh_neighbors(\'e\')', on_error_stop => 1);
is($ret, 0, 'an uncancelled EASE refresh at 10,000 items completes');
like($stdout, qr/^$ITEMS\|\d+$/m, "it stores lists for the $ITEMS items");
my %s = map { $_ => phase_seconds($stderr, $_) } ('read', 'ease gram', 'ease factor', 'ease invert', 'ease select');
my ($total) = $stderr =~ /\(total ([0-9.]+) s\)/;
note(sprintf('uncancelled (2 threads): read %.2f s, gram %.2f s, factor %.2f s, invert %.2f s, select %.2f s, total %.2f s',
	map { $_ // -1 } @s{'read', 'ease gram', 'ease factor', 'ease invert', 'ease select'}, $total));
ok(defined $s{'ease factor'} && defined $s{'ease invert'}, 'the refresh reported its phases');
like($node->safe_psql('postgres', q{SELECT (SELECT array_agg(k ORDER BY k) FROM jsonb_object_keys(parameters->'phases') k)::text
  || ' ' || (peak_memory_bytes >= 8 * items * items) FROM media_reco.refresh_history WHERE recommender = 'e'}),
	qr/^\{factor,gram,invert,select\} true$/, 'the history records the phases and the dense matrix in the peak');
my $old = $node->safe_psql('postgres', $sig_sql);
like($old, qr/^\d+:[0-9a-f]{32}$/, 'the old lists');
# what a cancelled session must still compute: a small EASE run
my $small_sql = q{SELECT count(*) || ':' || md5(string_agg(item_id || ':' || neighbor_id || '=' || similarity, ',' ORDER BY item_id, rank))
  FROM media_reco.item_similarity('small', metric => 'ease', k => 10)};
my $small = $node->safe_psql('postgres', "SET media_reco.threads = 2; $small_sql");

# The latency bound only means something if the phase being cancelled would
# run well beyond it; at 10,000 items it does on any machine this runs on,
# but say so rather than pass vacuously.
my $premise = defined $total && $total >= 2.5 && $s{'ease factor'} >= $EASE_BOUND && $s{'ease invert'} >= $EASE_BOUND;
ok(1, sprintf('premise: the uncancelled refresh takes %.2f s (factor %.2f s, invert %.2f s)%s', $total // -1,
	$s{'ease factor'} // -1, $s{'ease invert'} // -1,
	$premise ? '' : '; too fast for the latency checks, which are skipped'));

my $ctl = $node->background_psql('postgres', on_error_stop => 1);

# Start the refresh in a background session with $threads helper threads and
# return (session, pid) once the NOTICE $phase has arrived.
sub start_refresh_in
{
	my ($threads, $phase, $what) = @_;
	my $s = $node->background_psql('postgres', on_error_stop => 0);
	my $pid = $s->query_safe("SET media_reco.threads = $threads; SELECT pg_backend_pid()");
	$s->query_until(qr/go/, "\\echo go\nSELECT 1 FROM media_reco.refresh_neighbors('e');\n");
	wait_output($s, 'stderr', $phase, $what);
	return ($s, $pid);
}

sub check_latency
{
	my ($latency, $what) = @_;
	SKIP:
	{
		skip "the uncancelled refresh is too fast for a latency check ($what)", 1 unless $premise;
		ok($latency <= $EASE_BOUND,
			sprintf('%s landed in %.3f s (bound %.1f s)', $what, $latency, $EASE_BOUND));
	}
	return;
}

# pg_cancel_backend in the factor (threads 1 and 2) and in the inverse (threads 2)
for my $case (['factor', 2, $gram_notice, $factor_notice],
	['factor', 1, $gram_notice, $factor_notice],
	['inverse', 2, $factor_notice, $invert_notice])
{
	my ($phase, $threads, $entered, $left) = @$case;
	my ($bg, $pid) = start_refresh_in($threads, $entered, "the EASE $phase to begin (threads = $threads)");
	my $latency = time_until_output($ctl, "SELECT pg_cancel_backend($pid)", $bg, 'stderr', $cancelled,
		"the cancel in the $phase to land");
	check_latency($latency, "pg_cancel_backend in the EASE $phase (threads = $threads)");
	unlike($bg->{stderr}, $left, "the cancel came before the $phase ended (threads = $threads)");
	my ($out) = $bg->query($small_sql);
	is($out, $small, "the cancelled session keeps working: a small EASE run as in another session (threads = $threads, $phase)");
	$bg->quit;
	is($node->safe_psql('postgres', $sig_sql), $old, "old neighbours intact after a cancel in the $phase (threads = $threads)");
}

# statement_timeout in the factor: aimed at its middle from the phases
# measured above; the NOTICEs tell where it landed, and a timeout that
# missed (a machine much slower or faster this time) is aimed again, up to
# three times.
{
	my ($hit, $latency, $t_ms);
	my ($aim_before, $aim_factor) = ($s{'read'} + $s{'ease gram'}, $s{'ease factor'});
	for my $attempt (1 .. 3)
	{
		$t_ms = int(1000 * ($aim_before + $aim_factor / 2));
		my $t0 = [gettimeofday()];
		($ret, $stdout, $stderr) = $node->psql('postgres', qq{
SET media_reco.threads = 2;
SET statement_timeout = '${t_ms}ms';
SELECT 1 FROM media_reco.refresh_neighbors('e');
RESET statement_timeout;
$small_sql;}, on_error_stop => 0);
		my $elapsed = tv_interval($t0);
		if ($stderr =~ /canceling statement due to statement timeout/
			&& $stderr =~ $gram_notice && $stderr !~ $factor_notice)
		{
			$hit = 1;
			$latency = $elapsed - $t_ms / 1000;
			last;
		}
		diag("attempt $attempt: a statement_timeout of $t_ms ms missed the factor; stderr: $stderr");
		my $r = phase_seconds($stderr, 'read');
		my $g = phase_seconds($stderr, 'ease gram');
		my $f = phase_seconds($stderr, 'ease factor');
		$aim_before = defined $r && defined $g ? $r + $g : 2 * $t_ms / 1000;
		$aim_factor = $f if defined $f;
	}
	ok($hit, "statement_timeout ($t_ms ms) landed inside the EASE factor");
	check_latency($latency // 99, 'statement_timeout in the EASE factor (threads = 2)') if $hit;
	like($stdout, qr/^\Q$small\E$/m, 'the session keeps working after the timeout: a small EASE run as in another session');
	is($node->safe_psql('postgres', $sig_sql), $old, 'old neighbours intact after the timeout');
}

$ctl->quit;
$node->stop;
done_testing();
