# train_als is cancellable: a pg_cancel_backend in the middle of training
# (after its first iteration, at 1M rows and 64 factors) lands within
# $ALS_BOUND seconds with one helper thread and with two, leaves the model
# trained before exactly as it was (registry row and both factor tables),
# and the session keeps working (the helper threads were joined).
#
# Nothing here waits for a time: a training is known to be mid-way once its
# "iteration 1" NOTICE has arrived, and the absence of its last iteration's
# NOTICE tells that the cancel landed before the training ended.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use MediaRecoTest;

# "interrupts checked at least once per second"
my $ALS_BOUND = 1.0;
my $ITERATIONS = 20;

my $node = PostgreSQL::Test::Cluster->new('als_cancel');
$node->init;
$node->append_conf('postgresql.conf', "maintenance_work_mem = '1GB'");
$node->start;

$node->safe_psql('postgres', q{
SET client_min_messages = warning;
CREATE EXTENSION media_reco;
CREATE TABLE src AS SELECT user_id, item_id FROM media_reco.synthetic_interactions(50000, 20000, 1000000, 1);
CREATE INDEX ON src (user_id, item_id);
CREATE TABLE small AS SELECT * FROM src WHERE user_id <= 300;
SELECT 1 FROM media_reco.train_als('m', 'src', options => '{"factors": 64, "iterations": 1}');
});

my $sig_sql = q{SELECT (SELECT options::text || ' ' || users || ' ' || items || ' ' || loss::text FROM media_reco.als_models WHERE name = 'm')
  || ' ' || (SELECT md5(string_agg(item_id || ':' || factors::text, ',' ORDER BY item_id)) FROM media_reco.item_factors WHERE model = 'm')
  || ' ' || (SELECT md5(string_agg(user_id || ':' || factors::text, ',' ORDER BY user_id)) FROM media_reco.user_factors WHERE model = 'm')};
my $old = $node->safe_psql('postgres', $sig_sql);
like($old, qr/ [0-9a-f]{32} [0-9a-f]{32}$/, 'the model trained before');
# what a cancelled session must still compute: a small training, as in another session
my $small_sql = q{SELECT round(train_loss::numeric, 6) FROM media_reco.train_als('s', 'small', options => '{"factors": 8, "iterations": 3}')};
my $small = $node->safe_psql('postgres', "SET client_min_messages = warning; SET media_reco.threads = 2; $small_sql; SELECT media_reco.drop_als_model('s');");
$small =~ s/\n.*//s;

my $first = qr/als model "m": iteration 1 loss/;
my $last = qr/als model "m": iteration $ITERATIONS loss/;
my $cancelled = qr/canceling statement due to user request/;
my $ctl = $node->background_psql('postgres', on_error_stop => 1);

for my $threads (2, 1)
{
	my $bg = $node->background_psql('postgres', on_error_stop => 0);
	my $pid = $bg->query_safe("SET media_reco.threads = $threads; SELECT pg_backend_pid()");
	$bg->query_until(qr/go/, "\\echo go\nSELECT 1 FROM media_reco.train_als('m', 'src', options => '{\"factors\": 64, \"iterations\": $ITERATIONS, \"seed\": 5}');\n");
	wait_output($bg, 'stderr', $first, "the first iteration (threads = $threads)");
	my $latency = time_until_output($ctl, "SELECT pg_cancel_backend($pid)", $bg, 'stderr', $cancelled,
		"the cancel to land (threads = $threads)");
	ok($latency <= $ALS_BOUND, sprintf('pg_cancel_backend in train_als landed in %.3f s (bound %.1f s, threads = %d)',
		$latency, $ALS_BOUND, $threads));
	unlike($bg->{stderr}, $last, "the cancel came before the training ended (threads = $threads)");
	my ($out) = $bg->query("SET client_min_messages = warning; $small_sql");
	is($out, $small, "the cancelled session keeps working: a small training as in another session (threads = $threads)");
	$bg->query("SELECT media_reco.drop_als_model('s')");
	$bg->quit;
	is($node->safe_psql('postgres', $sig_sql), $old, "the old model is intact after the cancel (threads = $threads)");
}

$ctl->quit;
$node->stop;
done_testing();
