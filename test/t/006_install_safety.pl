# CREATE EXTENSION into a schema media_reco that already exists: it must not
# hand a non-superuser a way in.  The install refuses a schema owned by a
# non-superuser, one that already holds objects (a planted look-alike
# function), and one where another role may create objects; it accepts an
# empty superuser-owned schema.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('install');
$node->init;
$node->start;
$node->safe_psql('postgres', q{
CREATE ROLE mallory LOGIN;
GRANT CREATE ON DATABASE postgres TO mallory;
});

sub try_install
{
	my ($stdout, $stderr);
	my $rc = $node->psql('postgres', 'CREATE EXTENSION media_reco', stdout => \$stdout, stderr => \$stderr);
	my $installed = $node->safe_psql('postgres', q{SELECT count(*) FROM pg_extension WHERE extname = 'media_reco'});
	return ($rc, $stderr, $installed);
}

# 1. a schema a non-superuser created (and so owns)
$node->safe_psql('postgres', q{SET ROLE mallory; CREATE SCHEMA media_reco;});
my ($rc, $err, $installed) = try_install();
isnt($rc, 0, 'a schema owned by a non-superuser is refused');
like($err, qr/schema media_reco is owned by role mallory, which is not a superuser/, '... with the reason');
is($installed, '0', '... and nothing is installed');

# 2. given to a superuser, but with a planted overload of a media_reco function
$node->safe_psql('postgres', q{
SET ROLE mallory;
CREATE FUNCTION media_reco.recommend(name text, user_id integer, k integer) RETURNS TABLE(item_id bigint)
  LANGUAGE plpgsql AS $$ BEGIN RAISE NOTICE 'planted code ran as %', current_user; END $$;
RESET ROLE;
ALTER SCHEMA media_reco OWNER TO CURRENT_USER;
});
($rc, $err, $installed) = try_install();
isnt($rc, 0, 'a schema that already holds objects is refused');
like($err, qr/schema media_reco already holds 1 objects/, '... with the count');
is($installed, '0', '... and nothing is installed');

# 3. empty and superuser-owned, but another role may create in it
$node->safe_psql('postgres', q{
DROP FUNCTION media_reco.recommend(text, integer, integer);
GRANT CREATE ON SCHEMA media_reco TO PUBLIC;
});
($rc, $err, $installed) = try_install();
isnt($rc, 0, 'a schema where another role may create objects is refused');
like($err, qr/role mallory may create objects in schema media_reco/, '... naming the role');

# 4. empty, superuser-owned, no CREATE for others: installs and works
$node->safe_psql('postgres', q{REVOKE CREATE ON SCHEMA media_reco FROM PUBLIC;});
($rc, $err, $installed) = try_install();
is($rc, 0, 'an empty superuser-owned schema is accepted');
is($installed, '1', '... and the extension is installed');
is($node->safe_psql('postgres', q{SELECT count(*) FROM media_reco.synthetic_items(5)}), '5', '... and works');

# 5. the usual case: no schema beforehand
$node->safe_psql('postgres', q{DROP EXTENSION media_reco; DROP SCHEMA media_reco;});
($rc, $err, $installed) = try_install();
is($rc, 0, 'without a schema beforehand CREATE EXTENSION creates it');
is($node->safe_psql('postgres', q{SELECT pg_get_userbyid(nspowner) = current_user FROM pg_namespace WHERE nspname = 'media_reco'}),
	't', '... owned by the installing superuser');

$node->stop;
done_testing();
