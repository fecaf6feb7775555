# CREATE EXTENSION into a schema media_reco that already exists: it must not
# hand a non-superuser a way in.  The install refuses a schema owned by a
# non-superuser, one that already holds objects (a planted look-alike
# function), and one where another role may create objects; it accepts an
# empty superuser-owned schema.  Temporary types of the installing session
# cannot capture the script's plain type names.
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

# 6. the install script writes type names plain (text, name, regclass, ...):
# temporary types of the installing session cannot capture them, because
# CREATE EXTENSION runs the script with search_path "media_reco, pg_temp",
# which searches pg_catalog first and pg_temp last.  In the same session a
# plain name does resolve to the temporary type (pg_temp is searched first
# when it is not on the path), so the shadows are live while it installs.
$node->safe_psql('postgres', q{DROP EXTENSION media_reco; DROP SCHEMA media_reco;});
my @shadowed = qw(text name regclass jsonb bytea timestamptz);
my ($result, $shadow_err);
my $shadow_rc = $node->psql('postgres',
	join('', map { "CREATE DOMAIN pg_temp.$_ AS integer;\n" } @shadowed) . q{
SELECT pg_catalog.count(*) FROM pg_catalog.pg_type
 WHERE oid OPERATOR(pg_catalog.=) ANY (ARRAY[pg_catalog.to_regtype('text'), pg_catalog.to_regtype('name'),
           pg_catalog.to_regtype('regclass'), pg_catalog.to_regtype('jsonb'), pg_catalog.to_regtype('bytea'),
           pg_catalog.to_regtype('timestamptz')])
   AND typnamespace OPERATOR(pg_catalog.=) pg_catalog.pg_my_temp_schema();
SET client_min_messages = warning;
CREATE EXTENSION media_reco;
-- every type a column, argument or result of the extension uses, outside pg_catalog
SELECT pg_catalog.count(*) FROM (
  SELECT a.atttypid AS t FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) a.attrelid
   WHERE c.relnamespace OPERATOR(pg_catalog.=) 'media_reco'::pg_catalog.regnamespace AND a.attnum OPERATOR(pg_catalog.>) 0
  UNION ALL
  SELECT pg_catalog.unnest(COALESCE(p.proallargtypes, p.proargtypes::pg_catalog.oid[]))
    FROM pg_catalog.pg_proc p WHERE p.pronamespace OPERATOR(pg_catalog.=) 'media_reco'::pg_catalog.regnamespace
  UNION ALL
  SELECT p.prorettype FROM pg_catalog.pg_proc p WHERE p.pronamespace OPERATOR(pg_catalog.=) 'media_reco'::pg_catalog.regnamespace
) x JOIN pg_catalog.pg_type ty ON ty.oid OPERATOR(pg_catalog.=) x.t
 WHERE ty.typnamespace OPERATOR(pg_catalog.<>) 'pg_catalog'::pg_catalog.regnamespace;
}, stdout => \$result, stderr => \$shadow_err, on_error_stop => 1);
is($shadow_rc . $shadow_err, '0', 'CREATE EXTENSION succeeds in a session whose temporary types shadow built-in ones');
is($result, scalar(@shadowed) . "\n0",
	'temporary types named text, name, regclass, jsonb, bytea, timestamptz shadow the built-ins in the session, yet every type the installed extension uses is pg_catalog\'s');
# the same functions as an install in a session without the shadows
my $procs = q{SELECT string_agg(oid::regprocedure::text, ' ' ORDER BY oid::regprocedure::text) FROM pg_proc
 WHERE pronamespace = (SELECT oid FROM pg_namespace WHERE nspname = 'media_reco')};
$node->safe_psql('postgres', 'CREATE DATABASE unshadowed');
$node->safe_psql('unshadowed', 'SET client_min_messages = warning; CREATE EXTENSION media_reco');
my $unshadowed = $node->safe_psql('unshadowed', $procs);
cmp_ok(scalar(split / /, $unshadowed), '>=', 60, 'the unshadowed install has its functions');
is($node->safe_psql('postgres', $procs), $unshadowed, '... and the shadowed one the same');

$node->stop;
done_testing();
