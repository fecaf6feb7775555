-- media_reco 0.8.0 -> 0.9.0 (the C library of 0.9.0 still serves a 0.8.0 schema, so
-- install it first).  Names qualified as in the install script (see its header).
-- Every object is left exactly as a fresh 0.9.0 install creates it
-- (test/t/007_upgrade.pl compares the catalogues).  0.9.0 adds the metric form
-- of the aggregate pair_sums, whose adjusted_cosine states centre each user's
-- weights on the shard that holds the user, so an adjusted-cosine refresh of a
-- table distributed by user is pushed down to the workers; pair_sums_neighbors
-- merges them (its comment says so).  With the 0.9.0 library one server adds
-- adjusted cosine's products in fixed point when its centred weights are off a
-- power-of-two grid, as it does a plain cosine's; no data is rewritten.

\echo Use "ALTER EXTENSION media_reco UPDATE TO '0.9.0'" to load this file. \quit

-- The metric form (0.9.0): metric names what the states will be merged for
-- (cosine and adjusted_cosine keep the sums, adjusted_cosine of the weights
-- centred by user; jaccard and conditional the counts only).  It comes first,
-- so no call of the boolean form (a quoted 't' included) resolves to this one.
-- not STRICT, PARALLEL UNSAFE: as pair_sums_step.
CREATE FUNCTION media_reco.pair_sums_step(state bytea, metric text, user_id bigint, item_id bigint,
    weight double precision, weight_col text)
RETURNS bytea
LANGUAGE C IMMUTABLE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'pair_sums_metric_step';
COMMENT ON FUNCTION media_reco.pair_sums_step(bytea, text, bigint, bigint, double precision, text) IS
    'Transition function of media_reco.pair_sums, its metric form (only callable by the aggregate).';

CREATE AGGREGATE media_reco.pair_sums(metric text, user_id bigint, item_id bigint,
    weight double precision, weight_col text) (
    SFUNC = media_reco.pair_sums_step,
    STYPE = bytea,
    COMBINEFUNC = media_reco.pair_sums_combine,
    FINALFUNC = media_reco.pair_sums_final,
    PARALLEL = UNSAFE
);
COMMENT ON AGGREGATE media_reco.pair_sums(text, bigint, bigint, double precision, text) IS
    'Per-shard pair sums for the metric the states will be merged for: cosine (the sums of the weights), adjusted_cosine (of each user''s weights minus the user''s mean, centred on the shard that holds the user), jaccard or conditional (counts only); others 22023. As pair_sums(user_id, item_id, weight, weighted, weight_col) otherwise: merge with pair_sums_neighbors; the rows of a user must not be split across states.';

COMMENT ON FUNCTION media_reco.pair_sums_neighbors(bytea, text, integer, integer, double precision) IS
    'Merge the bundle of media_reco.pair_sums into the top-k neighbours of every item (cosine, adjusted_cosine, jaccard or conditional; adjusted_cosine from pair_sums with that metric, 22023 for sums of other weights), bit for bit the lists item_similarity computes over the same rows; weights off a power-of-two grid (ln(1 + plays)) merge as fixed-point sums, exactly as one server adds them; 0A000 when an item''s weights span 2^22 : 1 or more (its fixed-point sums would be cut), 22P03 for damaged bytes.';
