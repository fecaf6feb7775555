-- media_reco 0.9.0 -> 0.10.0 (the C library of 0.10.0 still serves a 0.9.0 schema, so
-- install it first).  Names qualified as in the install script (see its header).
-- Every object is left exactly as a fresh 0.10.0 install creates it
-- (test/t/007_upgrade.pl compares the catalogues).  0.10.0 adds Pearson's two
-- passes to the aggregate pair_sums, so that Pearson refreshes of a table
-- distributed by user are pushed down to the workers: the first pass sends each
-- shard's items' exact sums, pair_sums_item_means turns them into the items'
-- means, and the second pass (a new form taking item_means) sends the pair sums
-- of the weights centred on them; pair_sums_neighbors merges them (its comment
-- says so); media_reco.decayed_weight lets the workers decay a refresh's rows
-- as one server does, so refreshes with a time column push down too.  With the
-- 0.10.0 library one server takes Pearson's item means from exact sums and adds
-- its products in fixed point when the centred weights are off a power-of-two
-- grid, as it does adjusted cosine's; no data is rewritten.

\echo Use "ALTER EXTENSION media_reco UPDATE TO '0.10.0'" to load this file. \quit

-- The metric form with item means (0.10.0): pearson's second pass (the
-- item_means of pair_sums_item_means over the first pass).  not STRICT,
-- PARALLEL UNSAFE: as pair_sums_step.
CREATE FUNCTION media_reco.pair_sums_step(state bytea, metric text, user_id bigint, item_id bigint,
    weight double precision, weight_col text, options jsonb, item_means bytea)
RETURNS bytea
LANGUAGE C IMMUTABLE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'pair_sums_metric_step';
COMMENT ON FUNCTION media_reco.pair_sums_step(bytea, text, bigint, bigint, double precision, text, jsonb, bytea) IS
    'Transition function of media_reco.pair_sums, its metric form with item means (only callable by the aggregate).';

CREATE AGGREGATE media_reco.pair_sums(metric text, user_id bigint, item_id bigint,
    weight double precision, weight_col text, options jsonb, item_means bytea) (
    SFUNC = media_reco.pair_sums_step,
    STYPE = bytea,
    COMBINEFUNC = media_reco.pair_sums_combine,
    FINALFUNC = media_reco.pair_sums_final,
    PARALLEL = UNSAFE
);
COMMENT ON AGGREGATE media_reco.pair_sums(text, bigint, bigint, double precision, text, jsonb, bytea) IS
    'pair_sums(''pearson'', user_id, item_id, weight, weight_col, NULL, item_means): Pearson''s second pass, the pair sums of each item''s weights minus its mean from item_means (pair_sums_item_means of the first pass, pair_sums(''pearson'', ...) without them), merged by pair_sums_neighbors(..., ''pearson''), which checks the means against the states'' own rows (an item the means lack is centred on its mean over the state''s rows); 22023 for item_means with another metric, 22P03 for damaged means. NULL item_means: the first pass.';

-- not STRICT: a NULL argument is an error (22004) naming it.
CREATE FUNCTION media_reco.pair_sums_item_means(bundle bytea)
RETURNS bytea
LANGUAGE C IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'pair_sums_item_means';
COMMENT ON FUNCTION media_reco.pair_sums_item_means(bytea) IS
    'Pearson''s item means over the users of a bundle of pair_sums(''pearson'', ...) states (its first pass): each item''s exact sum of weights divided by its users (its weight when all are equal), as one server computes it, encoded as the item_means argument of the second pass. 22023 for states of other metrics, 22P03 for damaged bytes.';

-- not STRICT: a NULL argument is an error (22004) naming it; NULL elements are skipped.
CREATE FUNCTION media_reco.pair_sums_item_means(bundles bytea[])
RETURNS bytea
LANGUAGE C IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'pair_sums_item_means';
COMMENT ON FUNCTION media_reco.pair_sums_item_means(bytea[]) IS
    'pair_sums_item_means over several bundles merged as one (their users disjoint).';

-- Time decay as the Citus workers compute it for the pair sums (0.10.0): the
-- reference time and the half-life are literals of the refresh's query, so
-- every worker computes the weights one server computes.  STRICT: a row whose
-- weight or time is NULL is not a usable row.
CREATE FUNCTION media_reco.decayed_weight(weight double precision, t timestamp with time zone,
    reference_us bigint, half_life_seconds double precision, time_col text)
RETURNS double precision
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'decayed_weight_timestamptz';
COMMENT ON FUNCTION media_reco.decayed_weight(double precision, timestamp with time zone, bigint, double precision, text) IS
    'weight * 0.5^(age / half_life_seconds), age = reference_us - t in exact microseconds (reference_us: PostgreSQL''s internal timestamp, microseconds since 2000-01-01 00:00 UTC), exactly as a refresh with time_col decays its rows; a pushed-down refresh on Citus sends it to the workers. 22023 for an infinite t (naming time_col) or a half_life_seconds that is not positive and finite; a non-finite weight is returned as it is.';

CREATE FUNCTION media_reco.decayed_weight(weight double precision, t double precision,
    reference_us bigint, half_life_seconds double precision, time_col text)
RETURNS double precision
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'decayed_weight_float8';
COMMENT ON FUNCTION media_reco.decayed_weight(double precision, double precision, bigint, double precision, text) IS
    'decayed_weight for a time column of seconds since the Unix epoch (numbers), as a refresh decays them.';

COMMENT ON AGGREGATE media_reco.pair_sums(text, bigint, bigint, double precision, text) IS
    'Per-shard pair sums for the metric the states will be merged for: cosine (the sums of the weights), adjusted_cosine (of each user''s weights minus the user''s mean, centred on the shard that holds the user), jaccard or conditional (counts only), bm25 (its first pass: each shard''s users'' lengths, for pair_sums_mean_length), pearson (its first pass: each shard''s items'' exact sums, for pair_sums_item_means); others 22023. As pair_sums(user_id, item_id, weight, weighted, weight_col) otherwise: merge with pair_sums_neighbors; the rows of a user must not be split across states.';

COMMENT ON FUNCTION media_reco.pair_sums_neighbors(bytea, text, integer, integer, double precision) IS
    'Merge the bundle of media_reco.pair_sums into the top-k neighbours of every item (cosine, adjusted_cosine, pearson, jaccard, conditional or bm25; adjusted_cosine, pearson and bm25 from pair_sums with that metric, 22023 for sums of other weights or, for bm25, of another mean length; 0A000 for pearson sums centred on means that are not their rows''), bit for bit the lists item_similarity computes over the same rows; weights off a power-of-two grid (ln(1 + plays)) merge as fixed-point sums, exactly as one server adds them; 0A000 when an item''s weights span 2^22 : 1 or more (its fixed-point sums would be cut), 22P03 for damaged bytes.';
