-- media_reco: recommendation and prediction models inside PostgreSQL.
-- This script is search_path-safe: every object is schema-qualified, every
-- operator in a query body is OPERATOR(pg_catalog.x), and nothing uses
-- CREATE OR REPLACE (the schema is created by CREATE EXTENSION and owned by it).

\echo Use "CREATE EXTENSION media_reco" to load this file. \quit

-- ---------------------------------------------------------------------------
-- Registry of item-to-item recommenders
-- ---------------------------------------------------------------------------

CREATE TABLE media_reco.recommenders (
    id            integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name          text NOT NULL UNIQUE
                  CHECK (pg_catalog.length(name) OPERATOR(pg_catalog.>) 0),
    source        pg_catalog.regclass NOT NULL,
    user_col      pg_catalog.name NOT NULL,
    item_col      pg_catalog.name NOT NULL,
    weight_col    pg_catalog.name,
    metric        text NOT NULL
                  CHECK (metric OPERATOR(pg_catalog.=) ANY (ARRAY['cosine', 'jaccard', 'adjusted_cosine',
                                                                  'pearson', 'conditional'])),
    k             integer NOT NULL
                  CHECK (k OPERATOR(pg_catalog.>=) 1 AND k OPERATOR(pg_catalog.<=) 10000),
    min_support   integer NOT NULL CHECK (min_support OPERATOR(pg_catalog.>=) 1),
    shrinkage     double precision NOT NULL
                  CHECK (shrinkage OPERATOR(pg_catalog.>=) 0
                         AND shrinkage OPERATOR(pg_catalog.<) 'Infinity'::double precision),
    time_col      pg_catalog.name,
    half_life     interval
                  CHECK (half_life OPERATOR(pg_catalog.>) '0'::interval),
    created_at    timestamptz NOT NULL DEFAULT pg_catalog.now(),
    refreshed_at  timestamptz,
    interactions  bigint,
    users         bigint,
    items         bigint,
    pairs         bigint,
    CHECK ((time_col IS NULL) OPERATOR(pg_catalog.=) (half_life IS NULL))
);
COMMENT ON TABLE media_reco.recommenders IS
    'One row per item-to-item recommender: its source relation, columns and similarity parameters, and the counts of its last refresh. Managed by create_recommender, drop_recommender and refresh_neighbors.';

-- The materialized neighbour lists: one row per (recommender, item), the
-- neighbours as parallel arrays in rank order.  A refresh replaces a
-- recommender's rows inside one transaction, so every reader sees either
-- the complete old lists or the complete new ones.
CREATE TABLE media_reco.neighbor_store (
    recommender_id integer NOT NULL
                   REFERENCES media_reco.recommenders (id) ON DELETE CASCADE,
    item_id        bigint NOT NULL,
    neighbor_ids   bigint[] NOT NULL,
    similarities   double precision[] NOT NULL,
    supports       integer[] NOT NULL,
    PRIMARY KEY (recommender_id, item_id)
);
COMMENT ON TABLE media_reco.neighbor_store IS
    'Storage of the materialized neighbour lists (one row per item, neighbours as arrays in rank order). Read it through the view media_reco.item_neighbors.';

CREATE TABLE media_reco.refresh_history (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    recommender    text NOT NULL,
    started_at     timestamptz NOT NULL,
    finished_at    timestamptz NOT NULL,
    interactions   bigint NOT NULL,
    users          bigint NOT NULL,
    items          bigint NOT NULL,
    pairs          bigint NOT NULL,
    seconds        double precision NOT NULL,
    read_seconds   double precision NOT NULL,
    compute_seconds double precision NOT NULL,
    write_seconds  double precision NOT NULL,
    peak_memory_bytes bigint NOT NULL,
    parameters     jsonb NOT NULL
);
CREATE INDEX ON media_reco.refresh_history (recommender, started_at);
COMMENT ON TABLE media_reco.refresh_history IS
    'One row per successful refresh_neighbors run: when, how much data, how long each phase took, peak memory and the parameters used.';

SELECT pg_catalog.pg_extension_config_dump('media_reco.recommenders', '');
SELECT pg_catalog.pg_extension_config_dump('media_reco.neighbor_store', '');
SELECT pg_catalog.pg_extension_config_dump('media_reco.refresh_history', '');
SELECT pg_catalog.pg_extension_config_dump(
    pg_catalog.pg_get_serial_sequence('media_reco.recommenders', 'id'), '');
SELECT pg_catalog.pg_extension_config_dump(
    pg_catalog.pg_get_serial_sequence('media_reco.refresh_history', 'id'), '');

CREATE VIEW media_reco.item_neighbors AS
SELECT r.name AS recommender,
       s.item_id,
       n.neighbor_id,
       n.similarity,
       n.support,
       n.rank::integer AS rank
  FROM media_reco.recommenders r
  JOIN media_reco.neighbor_store s
    ON s.recommender_id OPERATOR(pg_catalog.=) r.id
 CROSS JOIN LATERAL ROWS FROM (pg_catalog.unnest(s.neighbor_ids), pg_catalog.unnest(s.similarities),
                               pg_catalog.unnest(s.supports))
       WITH ORDINALITY AS n(neighbor_id, similarity, support, rank);
COMMENT ON VIEW media_reco.item_neighbors IS
    'The materialized neighbour table, one row per (recommender, item, neighbour) with rank 1..k, as of the last committed refresh_neighbors.';

-- ---------------------------------------------------------------------------
-- Item-to-item collaborative filtering
-- ---------------------------------------------------------------------------

CREATE FUNCTION media_reco.item_similarity(
    source regclass,
    user_col name DEFAULT 'user_id',
    item_col name DEFAULT 'item_id',
    weight_col name DEFAULT NULL,
    metric text DEFAULT 'cosine',
    k integer DEFAULT 50,
    min_support integer DEFAULT 1,
    shrinkage double precision DEFAULT 0)
RETURNS TABLE(item_id bigint, neighbor_id bigint, similarity double precision,
              support integer, rank integer)
AS 'MODULE_PATHNAME', 'item_similarity'
LANGUAGE C STABLE PARALLEL RESTRICTED SECURITY INVOKER;
COMMENT ON FUNCTION media_reco.item_similarity(regclass, name, name, name, text, integer, integer, double precision) IS
    'Computes the top-k item neighbours (cosine, jaccard, adjusted_cosine, pearson or conditional, with min_support and shrinkage) over an interaction table and returns them without storing anything.';

CREATE FUNCTION media_reco.create_recommender(
    name text,
    source regclass,
    user_col name DEFAULT 'user_id',
    item_col name DEFAULT 'item_id',
    weight_col name DEFAULT NULL,
    metric text DEFAULT 'cosine',
    k integer DEFAULT 50,
    min_support integer DEFAULT 1,
    shrinkage double precision DEFAULT 0,
    time_col name DEFAULT NULL,
    half_life interval DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'create_recommender'
LANGUAGE C VOLATILE PARALLEL UNSAFE SECURITY INVOKER;
COMMENT ON FUNCTION media_reco.create_recommender(text, regclass, name, name, name, text, integer, integer, double precision, name, interval) IS
    'Registers an item-to-item recommender over a source relation after validating the source, its columns and the parameters (with time_col and half_life, each interaction weighs 0.5^(age / half_life)). Call refresh_neighbors to fill its neighbour table.';

CREATE FUNCTION media_reco.drop_recommender(name text)
RETURNS void
AS 'MODULE_PATHNAME', 'drop_recommender'
LANGUAGE C VOLATILE PARALLEL UNSAFE SECURITY INVOKER;
COMMENT ON FUNCTION media_reco.drop_recommender(text) IS
    'Removes a recommender and its neighbour lists (its refresh history is kept).';

CREATE FUNCTION media_reco.refresh_neighbors(name text)
RETURNS TABLE(interactions bigint, users bigint, items bigint, pairs bigint,
              seconds double precision)
AS 'MODULE_PATHNAME', 'refresh_neighbors'
LANGUAGE C VOLATILE PARALLEL UNSAFE SECURITY INVOKER;
COMMENT ON FUNCTION media_reco.refresh_neighbors(text) IS
    'Recomputes a recommender''s neighbour lists from its source and swaps them in atomically; logs the run in media_reco.refresh_history.';

CREATE FUNCTION media_reco.similar_items(name text, item_id bigint, k integer DEFAULT 10)
RETURNS TABLE(neighbor_id bigint, similarity double precision, rank integer)
AS 'MODULE_PATHNAME', 'similar_items'
LANGUAGE C STABLE PARALLEL SAFE SECURITY INVOKER;
COMMENT ON FUNCTION media_reco.similar_items(text, bigint, integer) IS
    'The k most similar items to an item, from the recommender''s materialized neighbour table.';

CREATE FUNCTION media_reco.recommend(name text, user_id bigint, k integer DEFAULT 10,
                                     exclude_seen boolean DEFAULT true)
RETURNS TABLE(item_id bigint, score double precision, rank integer)
AS 'MODULE_PATHNAME', 'recommend'
LANGUAGE C STABLE PARALLEL RESTRICTED SECURITY INVOKER;
COMMENT ON FUNCTION media_reco.recommend(text, bigint, integer, boolean) IS
    'Top-k items for a user: score(j) = sum over the user''s live history items i of w(u,i) * sim(i,j), over the stored neighbour lists.';

CREATE FUNCTION media_reco.recommend_for_items(name text, items bigint[], weights double precision[] DEFAULT NULL,
                                               k integer DEFAULT 10, exclude bigint[] DEFAULT NULL)
RETURNS TABLE(item_id bigint, score double precision, rank integer)
AS 'MODULE_PATHNAME', 'recommend_for_items'
LANGUAGE C STABLE PARALLEL SAFE SECURITY INVOKER;
COMMENT ON FUNCTION media_reco.recommend_for_items(text, bigint[], double precision[], integer, bigint[]) IS
    'Top-k items for an anonymous session: the given items (and optional weights) scored exactly as recommend scores a history; the given items and exclude are never returned.';

CREATE FUNCTION media_reco.explain_recommendation(name text, user_id bigint, item_id bigint)
RETURNS TABLE(because_item_id bigint, weight double precision, similarity double precision,
              contribution double precision, rank integer)
AS 'MODULE_PATHNAME', 'explain_recommendation'
LANGUAGE C STABLE PARALLEL RESTRICTED SECURITY INVOKER;
COMMENT ON FUNCTION media_reco.explain_recommendation(text, bigint, bigint) IS
    '"Because you watched...": the history items whose stored neighbours include item_id, with weight, similarity and contribution = weight * similarity (they sum to the item''s recommend score).';

CREATE FUNCTION media_reco.popular_items(name text, k integer DEFAULT 10, since timestamptz DEFAULT NULL)
RETURNS TABLE(item_id bigint, users bigint, rank integer)
AS 'MODULE_PATHNAME', 'popular_items'
LANGUAGE C STABLE PARALLEL RESTRICTED SECURITY INVOKER;
COMMENT ON FUNCTION media_reco.popular_items(text, integer, timestamptz) IS
    'The k items with the most distinct users in the recommender''s source (optionally only rows at or after since, which needs its time column); ties to the smaller item id.';

-- ---------------------------------------------------------------------------
-- Synthetic media catalogue (demo, tests, benchmarks)
-- ---------------------------------------------------------------------------

CREATE FUNCTION media_reco.synthetic_items(items integer, seed bigint DEFAULT 1)
RETURNS TABLE(item_id bigint, title text, genre text, popularity_rank integer)
AS 'MODULE_PATHNAME', 'synthetic_items'
LANGUAGE C IMMUTABLE PARALLEL SAFE SECURITY INVOKER;
COMMENT ON FUNCTION media_reco.synthetic_items(integer, bigint) IS
    'A reproducible synthetic catalogue: item ids 1..items with a genre and a popularity rank (same seed, same rows).';

CREATE FUNCTION media_reco.synthetic_interactions(users integer, items integer,
                                                  interactions bigint, seed bigint DEFAULT 1)
RETURNS TABLE(user_id bigint, item_id bigint, plays integer, rating real,
              watched_at timestamptz)
AS 'MODULE_PATHNAME', 'synthetic_interactions'
LANGUAGE C IMMUTABLE PARALLEL SAFE SECURITY INVOKER;
COMMENT ON FUNCTION media_reco.synthetic_interactions(integer, integer, bigint, bigint) IS
    'A reproducible synthetic viewing log over synthetic_items(items, seed): Zipf-like item popularity, heavy-tailed user activity, genre-loyal users, repeat views, ratings and timestamps in 2025.';

-- ---------------------------------------------------------------------------
-- Evaluation: ranking metrics over arrays, classifier aggregates
-- ---------------------------------------------------------------------------

CREATE FUNCTION media_reco.precision_at_k(recommended bigint[], relevant bigint[], k integer)
RETURNS double precision AS 'MODULE_PATHNAME', 'precision_at_k'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION media_reco.precision_at_k(bigint[], bigint[], integer) IS
    '|top k of recommended ∩ relevant| / k; NULL when relevant is empty. Duplicates in recommended count once.';

CREATE FUNCTION media_reco.recall_at_k(recommended bigint[], relevant bigint[], k integer)
RETURNS double precision AS 'MODULE_PATHNAME', 'recall_at_k'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION media_reco.recall_at_k(bigint[], bigint[], integer) IS
    '|top k of recommended ∩ relevant| / |relevant|; NULL when relevant is empty.';

CREATE FUNCTION media_reco.hit_at_k(recommended bigint[], relevant bigint[], k integer)
RETURNS double precision AS 'MODULE_PATHNAME', 'hit_at_k'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION media_reco.hit_at_k(bigint[], bigint[], integer) IS
    '1 if the top k of recommended contain a relevant item, else 0; NULL when relevant is empty.';

CREATE FUNCTION media_reco.ndcg_at_k(recommended bigint[], relevant bigint[], k integer)
RETURNS double precision AS 'MODULE_PATHNAME', 'ndcg_at_k'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION media_reco.ndcg_at_k(bigint[], bigint[], integer) IS
    'Σ over ranks r ≤ k holding a relevant item of 1/log2(r+1), divided by Σ_{r ≤ min(k, |relevant|)} 1/log2(r+1); NULL when relevant is empty.';

CREATE FUNCTION media_reco.average_precision_at_k(recommended bigint[], relevant bigint[], k integer)
RETURNS double precision AS 'MODULE_PATHNAME', 'average_precision_at_k'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION media_reco.average_precision_at_k(bigint[], bigint[], integer) IS
    'Σ over ranks r ≤ k holding a relevant item of precision@r, divided by min(k, |relevant|); NULL when relevant is empty.';

CREATE FUNCTION media_reco.reciprocal_rank(recommended bigint[], relevant bigint[])
RETURNS double precision AS 'MODULE_PATHNAME', 'reciprocal_rank'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION media_reco.reciprocal_rank(bigint[], bigint[]) IS
    '1 / rank of the first relevant item in recommended, 0 if none; NULL when relevant is empty.';

CREATE FUNCTION media_reco.roc_auc_accum(internal, double precision, boolean)
RETURNS internal AS 'MODULE_PATHNAME', 'roc_auc_accum'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION media_reco.roc_auc_accum(internal, double precision, boolean) IS
    'Transition function of media_reco.roc_auc.';
CREATE FUNCTION media_reco.roc_auc_combine(internal, internal)
RETURNS internal AS 'MODULE_PATHNAME', 'roc_auc_combine'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION media_reco.roc_auc_combine(internal, internal) IS
    'Combine function of media_reco.roc_auc (parallel aggregation).';
CREATE FUNCTION media_reco.roc_auc_serialize(internal)
RETURNS bytea AS 'MODULE_PATHNAME', 'roc_auc_serialize'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION media_reco.roc_auc_serialize(internal) IS
    'Serialization function of media_reco.roc_auc.';
CREATE FUNCTION media_reco.roc_auc_deserialize(bytea, internal)
RETURNS internal AS 'MODULE_PATHNAME', 'roc_auc_deserialize'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION media_reco.roc_auc_deserialize(bytea, internal) IS
    'Deserialization function of media_reco.roc_auc.';
CREATE FUNCTION media_reco.roc_auc_final(internal)
RETURNS double precision AS 'MODULE_PATHNAME', 'roc_auc_final'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION media_reco.roc_auc_final(internal) IS
    'Final function of media_reco.roc_auc.';

CREATE AGGREGATE media_reco.roc_auc(score double precision, label boolean) (
    SFUNC = media_reco.roc_auc_accum,
    STYPE = internal,
    FINALFUNC = media_reco.roc_auc_final,
    COMBINEFUNC = media_reco.roc_auc_combine,
    SERIALFUNC = media_reco.roc_auc_serialize,
    DESERIALFUNC = media_reco.roc_auc_deserialize,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE media_reco.roc_auc(double precision, boolean) IS
    'Area under the ROC curve of scores against boolean labels (ties count half); NULL rows skipped; NULL with a single class.';

CREATE FUNCTION media_reco.log_loss_accum(double precision[], double precision, boolean)
RETURNS double precision[] AS 'MODULE_PATHNAME', 'log_loss_accum'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION media_reco.log_loss_accum(double precision[], double precision, boolean) IS
    'Transition function of media_reco.log_loss.';
CREATE FUNCTION media_reco.log_loss_combine(double precision[], double precision[])
RETURNS double precision[] AS 'MODULE_PATHNAME', 'log_loss_combine'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION media_reco.log_loss_combine(double precision[], double precision[]) IS
    'Combine function of media_reco.log_loss (parallel aggregation).';
CREATE FUNCTION media_reco.log_loss_final(double precision[])
RETURNS double precision AS 'MODULE_PATHNAME', 'log_loss_final'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION media_reco.log_loss_final(double precision[]) IS
    'Final function of media_reco.log_loss.';

CREATE AGGREGATE media_reco.log_loss(p double precision, label boolean) (
    SFUNC = media_reco.log_loss_accum,
    STYPE = double precision[],
    INITCOND = '{0,0}',
    FINALFUNC = media_reco.log_loss_final,
    COMBINEFUNC = media_reco.log_loss_combine,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE media_reco.log_loss(double precision, boolean) IS
    'Mean binary cross-entropy of probabilities p against labels, p clipped to [1e-15, 1 - 1e-15]; NULL rows skipped.';
