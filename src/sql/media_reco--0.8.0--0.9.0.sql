-- media_reco 0.8.0 -> 0.9.0 (the C library of 0.9.0 still serves a 0.8.0 schema, so
-- install it first).  Names qualified as in the install script (see its header).
-- Every object is left exactly as a fresh 0.9.0 install creates it
-- (test/t/007_upgrade.pl compares the catalogues).  0.9.0 adds the metric forms
-- of the aggregate pair_sums and pair_sums_mean_length, so that adjusted-cosine
-- and BM25 refreshes of a table distributed by user are pushed down to the
-- workers: adjusted cosine's states centre each user's weights on the shard that
-- holds the user; BM25 takes two passes, the users' exact lengths, then the pair
-- sums of its terms; pair_sums_neighbors merges both (its comment says so).
-- With the 0.9.0 library one server adds adjusted cosine's and BM25's products
-- in fixed point when their weights are off a power-of-two grid, as it does a
-- plain cosine's, and BM25's mean length is an exact sum; no data is rewritten.

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

-- The metric form with options (0.9.0): bm25's second pass (bm25_k1, bm25_b and
-- the mean_length of the first pass).  not STRICT, PARALLEL UNSAFE: as pair_sums_step.
CREATE FUNCTION media_reco.pair_sums_step(state bytea, metric text, user_id bigint, item_id bigint,
    weight double precision, weight_col text, options jsonb)
RETURNS bytea
LANGUAGE C IMMUTABLE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'pair_sums_metric_step';
COMMENT ON FUNCTION media_reco.pair_sums_step(bytea, text, bigint, bigint, double precision, text, jsonb) IS
    'Transition function of media_reco.pair_sums, its metric form with options (only callable by the aggregate).';

CREATE AGGREGATE media_reco.pair_sums(metric text, user_id bigint, item_id bigint,
    weight double precision, weight_col text) (
    SFUNC = media_reco.pair_sums_step,
    STYPE = bytea,
    COMBINEFUNC = media_reco.pair_sums_combine,
    FINALFUNC = media_reco.pair_sums_final,
    PARALLEL = UNSAFE
);
COMMENT ON AGGREGATE media_reco.pair_sums(text, bigint, bigint, double precision, text) IS
    'Per-shard pair sums for the metric the states will be merged for: cosine (the sums of the weights), adjusted_cosine (of each user''s weights minus the user''s mean, centred on the shard that holds the user), jaccard or conditional (counts only), bm25 (its first pass: each shard''s users'' lengths, for pair_sums_mean_length); others 22023. As pair_sums(user_id, item_id, weight, weighted, weight_col) otherwise: merge with pair_sums_neighbors; the rows of a user must not be split across states.';

CREATE AGGREGATE media_reco.pair_sums(metric text, user_id bigint, item_id bigint,
    weight double precision, weight_col text, options jsonb) (
    SFUNC = media_reco.pair_sums_step,
    STYPE = bytea,
    COMBINEFUNC = media_reco.pair_sums_combine,
    FINALFUNC = media_reco.pair_sums_final,
    PARALLEL = UNSAFE
);
COMMENT ON AGGREGATE media_reco.pair_sums(text, bigint, bigint, double precision, text, jsonb) IS
    'pair_sums(metric, ...) with options: for bm25, {"bm25_k1", "bm25_b", "mean_length"} (defaults 100 and 0.8; mean_length from pair_sums_mean_length of the first pass) gives its second pass, the pair sums of the BM25 terms, merged by pair_sums_neighbors(..., ''bm25''); without mean_length, the first pass. Other metrics take no options (22023).';

-- not STRICT: a NULL argument is an error (22004) naming it.
CREATE FUNCTION media_reco.pair_sums_mean_length(bundle bytea)
RETURNS double precision
LANGUAGE C IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'pair_sums_mean_length';
COMMENT ON FUNCTION media_reco.pair_sums_mean_length(bytea) IS
    'BM25''s mean history length over the users of a bundle of pair_sums(''bm25'', ...) states (its first pass): the exact sum of every user''s Σ w divided by the users, as one server computes it; the mean_length option of the second pass. 22023 for states of other metrics, 22P03 for damaged bytes.';

-- not STRICT: a NULL argument is an error (22004) naming it; NULL elements are skipped.
CREATE FUNCTION media_reco.pair_sums_mean_length(bundles bytea[])
RETURNS double precision
LANGUAGE C IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'pair_sums_mean_length';
COMMENT ON FUNCTION media_reco.pair_sums_mean_length(bytea[]) IS
    'pair_sums_mean_length over several bundles merged as one (their users disjoint).';

COMMENT ON FUNCTION media_reco.pair_sums_neighbors(bytea, text, integer, integer, double precision) IS
    'Merge the bundle of media_reco.pair_sums into the top-k neighbours of every item (cosine, adjusted_cosine, jaccard, conditional or bm25; adjusted_cosine and bm25 from pair_sums with that metric, 22023 for sums of other weights or, for bm25, of another mean length), bit for bit the lists item_similarity computes over the same rows; weights off a power-of-two grid (ln(1 + plays)) merge as fixed-point sums, exactly as one server adds them; 0A000 when an item''s weights span 2^22 : 1 or more (its fixed-point sums would be cut), 22P03 for damaged bytes.';
