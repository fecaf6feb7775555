-- media_reco: recommendation and prediction models inside PostgreSQL.
--
-- The script is ordered by capability, each section under a ==== header:
--    1. schema guard
--    2. item-to-item recommenders: the registry and the neighbour table
--    3. item similarity computed on the fly
--    4. recommender lifecycle: create, refresh, drop
--    5. serving from the neighbour table: recommend, explain, popular items
--    6. batch recommendations
--    7. user-based collaborative filtering
--    8. implicit ALS matrix factorisation: factor tables, training, serving
--    9. evaluating recommenders: splits, evaluate, ranking metrics
--   10. the model registry
--   11. random forests
--   12. feed-forward networks (ad targeting)
--   13. prediction from named models and model values
--   14. explaining predictions
--   15. evaluating classifiers: parallel aggregates
--   16. synthetic data
--   17. running on a Citus cluster: citus_setup
--   18. a refresh's pair sums on the Citus workers: pair_sums
-- Every object is followed by its COMMENT and its grants, if any.
--
-- Labels: pure functions of their arguments (the ranking metrics, the
-- aggregates' state (de)serialisers) are IMMUTABLE STRICT PARALLEL SAFE and
-- carry no comment; every other volatility, strictness or parallel label has
-- a comment above its LANGUAGE line saying why.  Two reasons recur:
--   PARALLEL RESTRICTED: the function reads the recommender's source, which
--     may be a temporary table, and parallel workers cannot read those;
--   not STRICT: a NULL argument that is required is an error (22004) naming
--     it, never a silent NULL or empty result; the comment says what NULL
--     means for the optional ones.
-- Every function runs with its caller's rights (SECURITY INVOKER, the
-- default, so not written out); the one SECURITY DEFINER function, the
-- event trigger's, says why beside it.
--
-- Names: the script is search_path-safe and qualifies names one way
-- throughout (so do the upgrade scripts).  Objects of this extension are
-- written media_reco.x, the system's functions and relations pg_catalog.x,
-- and every operator in a query body (CHECK, DEFAULT, the view, the DO block,
-- function bodies) OPERATOR(pg_catalog.x); nothing uses CREATE OR REPLACE.
-- Type names are written plain (text, name, regclass, jsonb; integer, bigint,
-- double precision are keywords for pg_catalog's types anyway): CREATE
-- EXTENSION runs the script with the path "media_reco, pg_temp", which puts
-- pg_catalog first and pg_temp last, and a type, unlike a function or an
-- operator, is never chosen by best match across the path, so a plain name
-- always means the built-in type.
--
-- CREATE EXTENSION creates the schema media_reco, or uses one that already
-- exists: the block below makes sure such a schema cannot hand anyone else a
-- way in.

\echo Use "CREATE EXTENSION media_reco" to load this file. \quit

-- ===========================================================================
-- 1. Schema guard
-- ===========================================================================

-- A schema media_reco that existed before CREATE EXTENSION must be owned by a
-- superuser, be empty and give no other role CREATE: otherwise its owner or a
-- role with CREATE could add look-alike functions (overloads that a call
-- would resolve to), rename the schema, or replace objects this extension
-- relies on, and the superuser installing it would run their code.
DO $guard$
DECLARE
    nsp       oid;
    owner     name;
    is_super  boolean;
    n_objects bigint;
    creator   name;
BEGIN
    SELECT n.oid, r.rolname, r.rolsuper INTO nsp, owner, is_super
      FROM pg_catalog.pg_namespace n JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) n.nspowner
     WHERE n.nspname OPERATOR(pg_catalog.=) 'media_reco';
    IF NOT is_super THEN
        RAISE EXCEPTION 'schema media_reco is owned by role %, which is not a superuser', owner
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'Drop the schema (or give it to a superuser) and run CREATE EXTENSION media_reco again.';
    END IF;
    SELECT (SELECT pg_catalog.count(*) FROM pg_catalog.pg_class WHERE relnamespace OPERATOR(pg_catalog.=) nsp)
         OPERATOR(pg_catalog.+) (SELECT pg_catalog.count(*) FROM pg_catalog.pg_proc WHERE pronamespace OPERATOR(pg_catalog.=) nsp)
         OPERATOR(pg_catalog.+) (SELECT pg_catalog.count(*) FROM pg_catalog.pg_type WHERE typnamespace OPERATOR(pg_catalog.=) nsp)
         OPERATOR(pg_catalog.+) (SELECT pg_catalog.count(*) FROM pg_catalog.pg_operator WHERE oprnamespace OPERATOR(pg_catalog.=) nsp)
         OPERATOR(pg_catalog.+) (SELECT pg_catalog.count(*) FROM pg_catalog.pg_collation WHERE collnamespace OPERATOR(pg_catalog.=) nsp)
         OPERATOR(pg_catalog.+) (SELECT pg_catalog.count(*) FROM pg_catalog.pg_conversion WHERE connamespace OPERATOR(pg_catalog.=) nsp)
         OPERATOR(pg_catalog.+) (SELECT pg_catalog.count(*) FROM pg_catalog.pg_opclass WHERE opcnamespace OPERATOR(pg_catalog.=) nsp)
         OPERATOR(pg_catalog.+) (SELECT pg_catalog.count(*) FROM pg_catalog.pg_opfamily WHERE opfnamespace OPERATOR(pg_catalog.=) nsp)
         OPERATOR(pg_catalog.+) (SELECT pg_catalog.count(*) FROM pg_catalog.pg_ts_config WHERE cfgnamespace OPERATOR(pg_catalog.=) nsp)
         OPERATOR(pg_catalog.+) (SELECT pg_catalog.count(*) FROM pg_catalog.pg_ts_dict WHERE dictnamespace OPERATOR(pg_catalog.=) nsp)
         OPERATOR(pg_catalog.+) (SELECT pg_catalog.count(*) FROM pg_catalog.pg_ts_parser WHERE prsnamespace OPERATOR(pg_catalog.=) nsp)
         OPERATOR(pg_catalog.+) (SELECT pg_catalog.count(*) FROM pg_catalog.pg_ts_template WHERE tmplnamespace OPERATOR(pg_catalog.=) nsp)
         OPERATOR(pg_catalog.+) (SELECT pg_catalog.count(*) FROM pg_catalog.pg_statistic_ext WHERE stxnamespace OPERATOR(pg_catalog.=) nsp)
      INTO n_objects;
    IF n_objects OPERATOR(pg_catalog.>) 0 THEN
        RAISE EXCEPTION 'schema media_reco already holds % objects', n_objects
            USING ERRCODE = 'duplicate_schema',
                  HINT = 'Install into an empty schema: move or drop what is in media_reco first.';
    END IF;
    SELECT r.rolname INTO creator
      FROM pg_catalog.pg_roles r
     WHERE NOT r.rolsuper AND pg_catalog.has_schema_privilege(r.oid, nsp, 'CREATE')
     ORDER BY r.rolname LIMIT 1;
    IF creator IS NOT NULL THEN
        RAISE EXCEPTION 'role % may create objects in schema media_reco', creator
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'REVOKE CREATE ON SCHEMA media_reco from every role that is not a superuser first.';
    END IF;
END
$guard$;

-- ===========================================================================
-- 2. Item-to-item recommenders: the registry and the neighbour table
-- ===========================================================================

CREATE TABLE media_reco.recommenders (
    id            integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name          text NOT NULL UNIQUE
                  CHECK (pg_catalog.length(name) OPERATOR(pg_catalog.>) 0),
    source        regclass,
    user_col      name NOT NULL,
    item_col      name NOT NULL,
    weight_col    name,
    metric        text NOT NULL
                  CHECK (metric OPERATOR(pg_catalog.=) ANY (ARRAY['cosine', 'jaccard', 'adjusted_cosine',
                                                                  'pearson', 'conditional', 'bm25',
                                                                  'ease', 'rp3beta'])),
    k             integer NOT NULL
                  CHECK (k OPERATOR(pg_catalog.>=) 1 AND k OPERATOR(pg_catalog.<=) 10000),
    min_support   integer NOT NULL CHECK (min_support OPERATOR(pg_catalog.>=) 1),
    shrinkage     double precision NOT NULL
                  CHECK (shrinkage OPERATOR(pg_catalog.>=) 0
                         AND shrinkage OPERATOR(pg_catalog.<) 'Infinity'::double precision),
    time_col      name,
    half_life     interval
                  CHECK (half_life OPERATOR(pg_catalog.>) '0'::interval),
    bm25_k1       double precision NOT NULL DEFAULT 100
                  CHECK (bm25_k1 OPERATOR(pg_catalog.>=) 0
                         AND bm25_k1 OPERATOR(pg_catalog.<) 'Infinity'::double precision),
    bm25_b        double precision NOT NULL DEFAULT 0.8
                  CHECK (bm25_b OPERATOR(pg_catalog.>=) 0 AND bm25_b OPERATOR(pg_catalog.<=) 1),
    created_at    timestamptz NOT NULL DEFAULT pg_catalog.now(),
    refreshed_at  timestamptz,
    interactions  bigint,
    users         bigint,
    items         bigint,
    pairs         bigint,
    CHECK ((time_col IS NULL) OPERATOR(pg_catalog.=) (half_life IS NULL)),
    dropped_source text,
    CONSTRAINT recommenders_source_check
        CHECK ((source IS NULL) OPERATOR(pg_catalog.=) (dropped_source IS NOT NULL)),
    -- the learned models' options (0.3.0; last, where ALTER TABLE ADD COLUMN puts them in an
    -- upgraded database): the value given to create_recommender, NULL for the default
    ease_lambda   double precision
                  CHECK (ease_lambda OPERATOR(pg_catalog.>) 0
                         AND ease_lambda OPERATOR(pg_catalog.<) 'Infinity'::double precision),
    rp3_alpha     double precision
                  CHECK (rp3_alpha OPERATOR(pg_catalog.>) 0
                         AND rp3_alpha OPERATOR(pg_catalog.<) 'Infinity'::double precision),
    rp3_beta      double precision
                  CHECK (rp3_beta OPERATOR(pg_catalog.>=) 0
                         AND rp3_beta OPERATOR(pg_catalog.<) 'Infinity'::double precision),
    ease_max_items integer
                  CHECK (ease_max_items OPERATOR(pg_catalog.>=) 1)
);
COMMENT ON TABLE media_reco.recommenders IS
    'One row per item-to-item recommender: its source relation, columns and similarity parameters, and the counts of its last refresh. Managed by create_recommender, drop_recommender and refresh_neighbors.';

COMMENT ON COLUMN media_reco.recommenders.source IS
    'The interaction relation; NULL once it has been dropped (see dropped_source), so that a later relation reusing its OID is never read.';
COMMENT ON COLUMN media_reco.recommenders.dropped_source IS
    'The qualified name the source had when it was dropped (set by the event trigger media_reco_source_dropped), else NULL; refresh_neighbors then fails with 42P01 naming it.';
COMMENT ON COLUMN media_reco.recommenders.ease_lambda IS
    'EASE''s L2 regularisation lambda (> 0) as given to create_recommender; NULL means the default (README, "Learned item-item models").';
COMMENT ON COLUMN media_reco.recommenders.rp3_alpha IS
    'RP3beta''s exponent on the transition probabilities (> 0) as given to create_recommender; NULL means the default, 1.0.';
COMMENT ON COLUMN media_reco.recommenders.rp3_beta IS
    'RP3beta''s popularity penalty (>= 0) as given to create_recommender; NULL means the default, 0.5.';
COMMENT ON COLUMN media_reco.recommenders.ease_max_items IS
    'EASE covers only the ease_max_items most popular items (most distinct users, ties to the smaller id), the others getting no EASE neighbours; NULL means every item.';

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
-- Stored inline and uncompressed where they fit, because recommend() reads
-- the lists of every history item on every call: a k = 200 list (4.1 kB) is
-- over the default 2 kB toast threshold, and detoasting it (a TOAST index
-- probe, or decompression) was half of recommend()'s time.  The two arrays
-- recommend() reads are MAIN (compressed only when a row would not fit half
-- a page otherwise, out of line only when it would not fit a page); supports,
-- which it never reads, keep EXTENDED and are compressed first, so two
-- k = 200 rows still share a page.
ALTER TABLE media_reco.neighbor_store SET (toast_tuple_target = 4000);
ALTER TABLE media_reco.neighbor_store ALTER COLUMN neighbor_ids SET STORAGE MAIN,
                                      ALTER COLUMN similarities SET STORAGE MAIN;
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
COMMENT ON COLUMN media_reco.refresh_history.parameters IS
    'The parameters in effect (source, columns, metric, k, min_support, shrinkage, decay, bm25_k1, bm25_b, ease_lambda, ease_max_items (null: every item), rp3_alpha, rp3_beta), distinct_pairs and threads; for ease also ease_items (the items its dense matrix covers) and phases (seconds of gram, factor, invert, select).';

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

-- Sources dropped under their recommender: the sql_drop event trigger below
-- sets source to NULL and keeps the old name, so the registry never holds an
-- OID that a later, unrelated relation could reuse.  SECURITY DEFINER
-- because whoever drops a table fires it and need not have UPDATE on the
-- registry; it runs one fixed statement over pg_event_trigger_dropped_objects()
-- with a fixed search_path and cannot be called directly.
CREATE FUNCTION media_reco.mark_dropped_sources()
RETURNS event_trigger
-- VOLATILE: it updates the registry (SECURITY DEFINER: see above).
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $body$
DECLARE
    ids pg_catalog.oid[];
    names pg_catalog.text[];
    hit record;
    old_name pg_catalog.text;
BEGIN
    -- On a Citus worker, once citus_setup() made the registry a reference table,
    -- the coordinator's own trigger marks the source (its UPDATE reaches every
    -- node); the worker's drop of the same table (sent by Citus) must not
    -- update the reference table itself, which Citus refuses there.
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname OPERATOR(pg_catalog.=) 'citus') THEN
        IF EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition p
                    WHERE p.logicalrelid OPERATOR(pg_catalog.=) 'media_reco.recommenders'::pg_catalog.regclass)
           AND NOT pg_catalog.citus_is_coordinator() THEN
            RETURN;
        END IF;
    END IF;
    -- the dropped relations first (evaluated here: with Citus the UPDATEs
    -- below are sent to every node, where this function cannot run); then the
    -- matching rows, read on this node (whose OIDs the dropped objects carry),
    -- are marked one by one by name
    SELECT pg_catalog.array_agg(d.objid), pg_catalog.array_agg(d.object_identity)
      INTO ids, names
      FROM pg_catalog.pg_event_trigger_dropped_objects() d
     WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
       AND d.objsubid OPERATOR(pg_catalog.=) 0;
    IF ids IS NULL THEN
        RETURN;
    END IF;
    FOR hit IN
        SELECT r.name, r.source::pg_catalog.oid AS relid FROM media_reco.recommenders r
         WHERE r.source::pg_catalog.oid OPERATOR(pg_catalog.=) ANY (ids)
    LOOP
        old_name := names[pg_catalog.array_position(ids, hit.relid)];
        UPDATE media_reco.recommenders SET source = NULL, dropped_source = old_name
         WHERE name OPERATOR(pg_catalog.=) hit.name;
    END LOOP;
END
$body$;
REVOKE ALL ON FUNCTION media_reco.mark_dropped_sources() FROM PUBLIC;
COMMENT ON FUNCTION media_reco.mark_dropped_sources() IS
    'Event trigger function (sql_drop): marks the recommenders whose source relation was dropped (source NULL, dropped_source its old name).';
CREATE EVENT TRIGGER media_reco_source_dropped ON sql_drop
    EXECUTE FUNCTION media_reco.mark_dropped_sources();
COMMENT ON EVENT TRIGGER media_reco_source_dropped IS
    'Keeps media_reco.recommenders free of dangling source OIDs: a dropped source is marked, with its old name, by media_reco.mark_dropped_sources().';

-- ===========================================================================
-- 3. Item similarity computed on the fly (nothing stored)
-- ===========================================================================

CREATE FUNCTION media_reco.item_similarity(
    source regclass,
    user_col name DEFAULT 'user_id',
    item_col name DEFAULT 'item_id',
    weight_col name DEFAULT NULL,
    metric text DEFAULT 'cosine',
    k integer DEFAULT 50,
    min_support integer DEFAULT 1,
    shrinkage double precision DEFAULT 0,
    bm25_k1 double precision DEFAULT 100,
    bm25_b double precision DEFAULT 0.8,
    ease_lambda double precision DEFAULT NULL,
    rp3_alpha double precision DEFAULT NULL,
    rp3_beta double precision DEFAULT NULL,
    ease_max_items integer DEFAULT NULL)
RETURNS TABLE(item_id bigint, neighbor_id bigint, similarity double precision,
              support integer, rank integer)
AS 'MODULE_PATHNAME', 'item_similarity'
-- STABLE: reads the source (media_reco.threads and maintenance_work_mem, which it also
-- reads, never change the rows); PARALLEL RESTRICTED: the source may be a temporary table;
-- not STRICT: weight_col NULL means unweighted, and ease_lambda, rp3_alpha, rp3_beta and
-- ease_max_items NULL mean their defaults.
LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION media_reco.item_similarity(regclass, name, name, name, text, integer, integer, double precision, double precision, double precision, double precision, double precision, double precision, integer) IS
    'Computes the top-k item neighbours (cosine, jaccard, adjusted_cosine, pearson, conditional, bm25 with K1 = bm25_k1 and B = bm25_b, ease with lambda = ease_lambda over the ease_max_items most popular items, or rp3beta with alpha = rp3_alpha and beta = rp3_beta; with min_support and shrinkage) over an interaction table and returns them without storing anything. Options of another metric are checked and ignored; NULL options mean their defaults.';

-- ===========================================================================
-- 4. Recommender lifecycle: create, refresh, drop
-- ===========================================================================

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
    half_life interval DEFAULT NULL,
    bm25_k1 double precision DEFAULT 100,
    bm25_b double precision DEFAULT 0.8,
    ease_lambda double precision DEFAULT NULL,
    rp3_alpha double precision DEFAULT NULL,
    rp3_beta double precision DEFAULT NULL,
    ease_max_items integer DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'create_recommender'
-- VOLATILE, PARALLEL UNSAFE: inserts into the registry; not STRICT: weight_col NULL means
-- unweighted, time_col and half_life NULL mean no time decay, and ease_lambda, rp3_alpha,
-- rp3_beta and ease_max_items NULL mean their defaults.
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION media_reco.create_recommender(text, regclass, name, name, name, text, integer, integer, double precision, name, interval, double precision, double precision, double precision, double precision, double precision, integer) IS
    'Registers an item-to-item recommender over a source relation after validating the source, its columns and the parameters (with time_col and half_life, each interaction weighs 0.5^(age / half_life); metric ease or rp3beta take ease_lambda and ease_max_items, or rp3_alpha and rp3_beta, NULL meaning the default, options of another metric checked and ignored). Call refresh_neighbors to fill its neighbour table.';

CREATE FUNCTION media_reco.refresh_neighbors(name text)
RETURNS TABLE(interactions bigint, users bigint, items bigint, pairs bigint,
              seconds double precision)
AS 'MODULE_PATHNAME', 'refresh_neighbors'
-- VOLATILE, PARALLEL UNSAFE: rewrites the neighbour table and appends to refresh_history;
-- not STRICT: a NULL name is 22004.
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION media_reco.refresh_neighbors(text) IS
    'Recomputes a recommender''s neighbour lists from its source and swaps them in atomically; logs the run in media_reco.refresh_history.';

CREATE FUNCTION media_reco.drop_recommender(name text)
RETURNS void
AS 'MODULE_PATHNAME', 'drop_recommender'
-- VOLATILE, PARALLEL UNSAFE: deletes the registry row and its neighbour lists; not STRICT:
-- a NULL name is 22004.
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION media_reco.drop_recommender(text) IS
    'Removes a recommender and its neighbour lists (its refresh history is kept).';

-- ===========================================================================
-- 5. Serving from the neighbour table: recommend, explain, popular items
-- ===========================================================================

CREATE FUNCTION media_reco.recommend(name text, user_id bigint, k integer DEFAULT 10,
                                     exclude_seen boolean DEFAULT true, exclude bigint[] DEFAULT NULL,
                                     "only" bigint[] DEFAULT NULL, fallback text DEFAULT 'none')
RETURNS TABLE(item_id bigint, score double precision, rank integer, reason text)
AS 'MODULE_PATHNAME', 'recommend'
-- STABLE: reads the neighbour table and the user's live history in the source (decay ages
-- are measured from now(), fixed within a statement); PARALLEL RESTRICTED: the source may
-- be a temporary table; not STRICT: exclude and "only" NULL mean no filter.
LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION media_reco.recommend(text, bigint, integer, boolean, bigint[], bigint[], text) IS
    'Top-k items for a user: score(j) = sum over the user''s live history items i of w(u,i) * sim(i,j), over the stored neighbour lists; exclude (blocklist) and only (allowlist) apply while scoring; fallback => ''popular'' fills up to k with the most popular unseen items (score NULL, reason ''popular'').';

CREATE FUNCTION media_reco.recommend_for_items(name text, items bigint[], weights double precision[] DEFAULT NULL,
                                               k integer DEFAULT 10, exclude bigint[] DEFAULT NULL)
RETURNS TABLE(item_id bigint, score double precision, rank integer)
AS 'MODULE_PATHNAME', 'recommend_for_items'
-- STABLE: reads the neighbour table; PARALLEL SAFE: never the source, only media_reco's
-- own tables; not STRICT: weights NULL means 1 each, exclude NULL excludes nothing more.
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION media_reco.recommend_for_items(text, bigint[], double precision[], integer, bigint[]) IS
    'Top-k items for an anonymous session: the given items (and optional weights) scored exactly as recommend scores a history; the given items and exclude are never returned.';

CREATE FUNCTION media_reco.similar_items(name text, item_id bigint, k integer DEFAULT 10)
RETURNS TABLE(neighbor_id bigint, similarity double precision, rank integer)
AS 'MODULE_PATHNAME', 'similar_items'
-- STABLE: reads the neighbour table; PARALLEL SAFE: never the source, only media_reco's
-- own tables; not STRICT: a NULL argument is 22004.
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION media_reco.similar_items(text, bigint, integer) IS
    'The k most similar items to an item, from the recommender''s materialized neighbour table.';

CREATE FUNCTION media_reco.explain_recommendation(name text, user_id bigint, item_id bigint)
RETURNS TABLE(because_item_id bigint, weight double precision, similarity double precision,
              contribution double precision, rank integer)
AS 'MODULE_PATHNAME', 'explain_recommendation'
-- STABLE: reads the neighbour table and the user's history in the source; PARALLEL
-- RESTRICTED: the source may be a temporary table; not STRICT: a NULL argument is 22004.
LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION media_reco.explain_recommendation(text, bigint, bigint) IS
    '"Because you watched...": the history items whose stored neighbours include item_id, with weight, similarity and contribution = weight * similarity (they sum to the item''s recommend score).';

CREATE FUNCTION media_reco.popular_items(name text, k integer DEFAULT 10, since timestamptz DEFAULT NULL)
RETURNS TABLE(item_id bigint, users bigint, rank integer)
AS 'MODULE_PATHNAME', 'popular_items'
-- STABLE: counts the source live; PARALLEL RESTRICTED: the source may be a temporary
-- table; not STRICT: since NULL counts every row.
LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION media_reco.popular_items(text, integer, timestamptz) IS
    'The k items with the most distinct users in the recommender''s source (optionally only rows at or after since, which needs its time column); ties to the smaller item id.';

-- ===========================================================================
-- 6. Batch recommendations: every user in one set-wise pass
-- ===========================================================================

CREATE FUNCTION media_reco.recommend_all(name text, k integer DEFAULT 10, users bigint[] DEFAULT NULL)
RETURNS TABLE(user_id bigint, item_id bigint, score double precision, rank integer)
AS 'MODULE_PATHNAME', 'recommend_all'
-- STABLE: reads the source and the neighbour table (media_reco.threads never changes the
-- rows); PARALLEL RESTRICTED: the source may be a temporary table; not STRICT: users NULL
-- means every user of the source.
LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION media_reco.recommend_all(text, integer, bigint[]) IS
    'recommend''s top-k (seen items excluded) for every user of the source, or for the given users, computed set-wise in one pass: rows by user id, then rank.';

-- ===========================================================================
-- 7. User-based collaborative filtering, computed live for one user
-- ===========================================================================

CREATE FUNCTION media_reco.similar_users(name text, user_id bigint, k integer DEFAULT 10)
RETURNS TABLE(neighbor_user_id bigint, similarity double precision, rank integer)
AS 'MODULE_PATHNAME', 'similar_users'
-- STABLE: reads the source live; PARALLEL RESTRICTED: the source may be a temporary table;
-- not STRICT: a NULL argument is 22004.
LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION media_reco.similar_users(text, bigint, integer) IS
    'The k users most similar to a user under the recommender''s metric over user vectors (cosine: Σ w(u,i)·w(v,i) / (‖w(u,·)‖·‖w(v,·)‖), norms over all of each user''s items), computed live; ties to the smaller user id.';

CREATE FUNCTION media_reco.recommend_user_based(name text, user_id bigint, k integer DEFAULT 10,
                                                neighbors integer DEFAULT 50, exclude_seen boolean DEFAULT true)
RETURNS TABLE(item_id bigint, score double precision, rank integer)
AS 'MODULE_PATHNAME', 'recommend_user_based'
-- STABLE: reads the source live; PARALLEL RESTRICTED: the source may be a temporary table;
-- not STRICT: a NULL argument is 22004.
LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION media_reco.recommend_user_based(text, bigint, integer, integer, boolean) IS
    'User-based top-k: score(u,j) = Σ over the `neighbors` most similar users v (ties: smaller id) of sim(u,v)·w(v,j); ties to the smaller item id.';

-- ===========================================================================
-- 8. Implicit ALS matrix factorisation: the model registry, the factor
--    tables, training and serving
-- ===========================================================================

-- One row per ALS model.  train_als inserts or updates it, and replaces the
-- model's rows in item_factors and user_factors, in the caller's
-- transaction: readers see the whole old model or the whole new one.
CREATE TABLE media_reco.als_models (
    name           text PRIMARY KEY,
    source         regclass,
    dropped_source text,
    user_col       name NOT NULL,
    item_col       name NOT NULL,
    weight_col     name,
    options        jsonb NOT NULL,
    users          bigint NOT NULL,
    items          bigint NOT NULL,
    factors        integer NOT NULL,
    iterations     integer NOT NULL,
    loss           double precision[] NOT NULL,
    train_loss     double precision NOT NULL,
    seconds        double precision NOT NULL,
    trained_at     timestamptz NOT NULL,
    CHECK (pg_catalog.length(name) OPERATOR(pg_catalog.>=) 1 AND pg_catalog.octet_length(name) OPERATOR(pg_catalog.<=) 63)
);
COMMENT ON TABLE media_reco.als_models IS
    'Implicit ALS models (media_reco.train_als): source and columns, the options in effect, sizes, the loss after each iteration and when the model was trained. Its factors are in media_reco.item_factors and media_reco.user_factors.';
COMMENT ON COLUMN media_reco.als_models.source IS
    'The interaction relation; NULL once it was dropped (dropped_source then holds its old name).';
COMMENT ON COLUMN media_reco.als_models.options IS
    'Every option in effect (factors, regularization, alpha, iterations, cg_steps, seed, and time_col and half_life when set), defaults included.';
COMMENT ON COLUMN media_reco.als_models.loss IS
    'L = sum over every (user, item) pair of c (p - x_u . y_i)^2 + regularization (sum |x_u|^2 + sum |y_i|^2), c = 1 + alpha w and p = 1 for a stored pair, c = 1 and p = 0 otherwise, after each iteration.';

CREATE TABLE media_reco.item_factors (
    model   text NOT NULL REFERENCES media_reco.als_models (name) ON DELETE CASCADE ON UPDATE CASCADE,
    item_id bigint NOT NULL,
    factors real[] NOT NULL,
    PRIMARY KEY (model, item_id)
);
COMMENT ON TABLE media_reco.item_factors IS
    'The item factors y_i of each ALS model, one row per item seen in training, as of the last committed train_als.';

CREATE TABLE media_reco.user_factors (
    model   text NOT NULL REFERENCES media_reco.als_models (name) ON DELETE CASCADE ON UPDATE CASCADE,
    user_id bigint NOT NULL,
    factors real[] NOT NULL,
    PRIMARY KEY (model, user_id)
);
COMMENT ON TABLE media_reco.user_factors IS
    'The user factors x_u of each ALS model, one row per user seen in training (solved against the stored item factors), as of the last committed train_als.';

SELECT pg_catalog.pg_extension_config_dump('media_reco.als_models', '');
SELECT pg_catalog.pg_extension_config_dump('media_reco.item_factors', '');
SELECT pg_catalog.pg_extension_config_dump('media_reco.user_factors', '');

-- Sources dropped under their ALS model: as media_reco.mark_dropped_sources()
-- does for recommenders (SECURITY DEFINER for the same reason: whoever drops
-- a table fires it and need not have UPDATE on the registry).
CREATE FUNCTION media_reco.mark_dropped_als_sources()
RETURNS event_trigger
-- VOLATILE: it updates the registry (SECURITY DEFINER: see above).
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $body$
DECLARE
    ids pg_catalog.oid[];
    names pg_catalog.text[];
    hit record;
    old_name pg_catalog.text;
BEGIN
    -- On a Citus worker, once citus_setup() made the registry a reference table,
    -- the coordinator's own trigger marks the source (its UPDATE reaches every
    -- node); the worker's drop of the same table (sent by Citus) must not
    -- update the reference table itself, which Citus refuses there.
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname OPERATOR(pg_catalog.=) 'citus') THEN
        IF EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition p
                    WHERE p.logicalrelid OPERATOR(pg_catalog.=) 'media_reco.als_models'::pg_catalog.regclass)
           AND NOT pg_catalog.citus_is_coordinator() THEN
            RETURN;
        END IF;
    END IF;
    -- the dropped relations first (evaluated here: with Citus the UPDATEs
    -- below are sent to every node, where this function cannot run); then the
    -- matching rows, read on this node (whose OIDs the dropped objects carry),
    -- are marked one by one by name
    SELECT pg_catalog.array_agg(d.objid), pg_catalog.array_agg(d.object_identity)
      INTO ids, names
      FROM pg_catalog.pg_event_trigger_dropped_objects() d
     WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
       AND d.objsubid OPERATOR(pg_catalog.=) 0;
    IF ids IS NULL THEN
        RETURN;
    END IF;
    FOR hit IN
        SELECT m.name, m.source::pg_catalog.oid AS relid FROM media_reco.als_models m
         WHERE m.source::pg_catalog.oid OPERATOR(pg_catalog.=) ANY (ids)
    LOOP
        old_name := names[pg_catalog.array_position(ids, hit.relid)];
        UPDATE media_reco.als_models SET source = NULL, dropped_source = old_name
         WHERE name OPERATOR(pg_catalog.=) hit.name;
    END LOOP;
END
$body$;
REVOKE ALL ON FUNCTION media_reco.mark_dropped_als_sources() FROM PUBLIC;
COMMENT ON FUNCTION media_reco.mark_dropped_als_sources() IS
    'Event trigger function (sql_drop): marks the ALS models whose source relation was dropped (source NULL, dropped_source its old name).';
CREATE EVENT TRIGGER media_reco_als_source_dropped ON sql_drop
    EXECUTE FUNCTION media_reco.mark_dropped_als_sources();
COMMENT ON EVENT TRIGGER media_reco_als_source_dropped IS
    'Keeps media_reco.als_models free of dangling source OIDs: a dropped source is marked, with its old name, by media_reco.mark_dropped_als_sources().';

CREATE FUNCTION media_reco.train_als(model_name text, source regclass,
    user_col name DEFAULT 'user_id', item_col name DEFAULT 'item_id',
    weight_col name DEFAULT NULL, options jsonb DEFAULT '{}')
RETURNS TABLE(model_name text, users bigint, items bigint, factors integer, iterations integer,
              train_loss double precision, seconds double precision)
AS 'MODULE_PATHNAME', 'train_als'
-- VOLATILE, PARALLEL UNSAFE: writes the registry and the factor tables; not STRICT:
-- weight_col NULL means each row counts 1.
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION media_reco.train_als(text, regclass, name, name, name, jsonb) IS
    'Trains (or retrains) an implicit-feedback ALS model (Hu, Koren, Volinsky 2008) over a source: confidence 1 + alpha * w per stored (user, item) pair, weights summed over duplicates (time decay with the time_col and half_life options); options factors (64), regularization, alpha, iterations (15), cg_steps (3; 0 = exact solve), seed. Replaces the model''s factor tables atomically.';

CREATE FUNCTION media_reco.drop_als_model(model_name text)
RETURNS void
AS 'MODULE_PATHNAME', 'drop_als_model'
-- VOLATILE, PARALLEL UNSAFE: deletes the registry row and its factors; not STRICT: a NULL
-- name is 22004.
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION media_reco.drop_als_model(text) IS
    'Removes an ALS model and its item and user factors.';

CREATE FUNCTION media_reco.recommend_als(model_name text, user_id bigint, k integer DEFAULT 10,
    exclude bigint[] DEFAULT NULL, "only" bigint[] DEFAULT NULL, fallback text DEFAULT NULL,
    recalculate boolean DEFAULT false)
RETURNS TABLE(item_id bigint, score double precision, rank integer, reason text)
AS 'MODULE_PATHNAME', 'recommend_als'
-- STABLE: reads the factor tables and the user's live history in the source (decay ages
-- from now(), fixed within a statement); PARALLEL RESTRICTED: the source may be a temporary
-- table; not STRICT: exclude and "only" NULL mean no filter, fallback NULL means 'none'.
LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION media_reco.recommend_als(text, bigint, integer, bigint[], bigint[], text, boolean) IS
    'Top-k items for a user by score x_u . y_j over every item of an ALS model, the user''s live history excluded, ties to the smaller id; with recalculate (or for a user absent from training) x_u is solved exactly from the current history against the stored item factors. exclude and only filter while scoring; fallback => ''popular'' fills up to k with popular unseen items (score NULL, reason ''popular'').';

CREATE FUNCTION media_reco.recommend_all_als(model_name text, k integer DEFAULT 10, users bigint[] DEFAULT NULL)
RETURNS TABLE(user_id bigint, item_id bigint, score double precision, rank integer)
AS 'MODULE_PATHNAME', 'recommend_all_als'
-- STABLE: reads the source and the factor tables; PARALLEL RESTRICTED: the source may be a
-- temporary table; not STRICT: users NULL means every user of the source.
LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION media_reco.recommend_all_als(text, integer, bigint[]) IS
    'recommend_als''s top-k (seen items excluded; users absent from training recalculated from their history) for every user of the source, or for the given users, in one pass: rows by user id, then rank.';

CREATE FUNCTION media_reco.als_user_vector(model_name text, user_id bigint, recalculate boolean DEFAULT false)
RETURNS double precision[]
AS 'MODULE_PATHNAME', 'als_user_vector'
-- STABLE: reads the factor tables and the user's live history in the source; PARALLEL
-- RESTRICTED: the source may be a temporary table; not STRICT: a NULL argument is 22004.
LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION media_reco.als_user_vector(text, bigint, boolean) IS
    'The user factors x_u recommend_als scores with: the stored ones, or (recalculate, or a user absent from training) the exact solve of the user''s live history against the stored item factors; NULL when the user has no history the model knows.';

CREATE FUNCTION media_reco.evaluate_als(model_name text, test_source regclass, k integer DEFAULT 10)
RETURNS TABLE(metric text, value double precision)
AS 'MODULE_PATHNAME', 'evaluate_als'
-- VOLATILE, PARALLEL UNSAFE: creates a temporary table (ON COMMIT DROP) for the seen
-- items; not STRICT: a NULL argument is 22004.
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION media_reco.evaluate_als(text, regclass, integer) IS
    'evaluate''s protocol and metrics (precision@k, recall@k, ndcg@k, map@k, hit_rate@k, mrr, coverage, users, and the popular_ baseline) over recommend_als''s lists for the test users of an ALS model.';

CREATE FUNCTION media_reco.similar_items_als(model_name text, item_id bigint, k integer DEFAULT 10)
RETURNS TABLE(neighbor_id bigint, similarity double precision, rank integer)
AS 'MODULE_PATHNAME', 'similar_items_als'
-- STABLE: reads the item factors; PARALLEL SAFE: never the source, only media_reco's own
-- tables; not STRICT: a NULL argument is 22004.
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION media_reco.similar_items_als(text, bigint, integer) IS
    'The k items whose ALS item factors have the highest cosine with the item''s (the item itself excluded, ties to the smaller id).';

-- ===========================================================================
-- 9. Evaluating recommenders: split, score against a popularity baseline,
--    ranking metrics over arrays
-- ===========================================================================

CREATE FUNCTION media_reco.split_interactions(source regclass, train_table text, test_table text,
    method text DEFAULT 'random', test_fraction double precision DEFAULT 0.2, seed integer DEFAULT 0,
    time_col name DEFAULT NULL, user_col name DEFAULT 'user_id')
RETURNS TABLE(train_rows bigint, test_rows bigint)
AS 'MODULE_PATHNAME', 'split_interactions'
-- VOLATILE, PARALLEL UNSAFE: creates and fills train_table and test_table; not STRICT:
-- time_col NULL means none (enough for 'random'), user_col NULL means user_id.
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION media_reco.split_interactions(regclass, text, text, text, double precision, integer, name, name) IS
    'Create train_table and test_table from source: ''random'' puts each row in test when a seeded hash of its values falls below test_fraction; ''temporal'' puts each user''s latest floor(test_fraction * n) timed rows in test.';

CREATE FUNCTION media_reco.evaluate(name text, test_source regclass, k integer DEFAULT 10)
RETURNS TABLE(metric text, value double precision)
AS 'MODULE_PATHNAME', 'evaluate_recommender'
-- VOLATILE, PARALLEL UNSAFE: creates a temporary table (ON COMMIT DROP) for the seen
-- items; not STRICT: a NULL argument is 22004.
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION media_reco.evaluate(text, regclass, integer) IS
    'Score a recommender on held-out interactions: precision@k, recall@k, ndcg@k, map@k, hit_rate@k, mrr, coverage and users over test users with a test item not in the training source, and the same prefixed popular_ for the most popular unseen items.';

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

-- ===========================================================================
-- 10. The model registry: forests and networks stored by name
-- ===========================================================================

CREATE TABLE media_reco.models (
    name          text PRIMARY KEY
                  CHECK (pg_catalog.octet_length(name) OPERATOR(pg_catalog.>=) 1
                         AND pg_catalog.octet_length(name) OPERATOR(pg_catalog.<=) 63),
    algorithm     text NOT NULL
                  CHECK (algorithm OPERATOR(pg_catalog.=) ANY (ARRAY['random_forest', 'mlp'])),
    task          text NOT NULL
                  CHECK (task OPERATOR(pg_catalog.=) ANY (ARRAY['classification', 'regression'])),
    feature_names text[] NOT NULL,
    classes       double precision[],
    options       jsonb NOT NULL DEFAULT '{}',
    metrics       jsonb NOT NULL DEFAULT '{}',
    label         text,
    source        text,
    inputs        jsonb,
    trained_at    timestamptz NOT NULL DEFAULT pg_catalog.now(),
    model         bytea NOT NULL
);
-- model bytes are floating-point arrays: compression gains little and costs every load
ALTER TABLE media_reco.models ALTER COLUMN model SET STORAGE EXTERNAL;
COMMENT ON TABLE media_reco.models IS
    'One row per named model: algorithm, task, feature names, classes, the options in effect, training metrics, the input encoding (inputs) and the validated model bytes. Written by train_forest and save_model, read by predict, predict_proba and feature_importance.';
COMMENT ON COLUMN media_reco.models.inputs IS
    'How source columns become features: [{"column", "type": number|boolean|category|array, "categories", "length"}], in feature order.';
COMMENT ON COLUMN media_reco.models.model IS
    'The model bytes (magic, format version, kind, length, CRC-32C, payload); validated on every load.';
SELECT pg_catalog.pg_extension_config_dump('media_reco.models', '');

CREATE FUNCTION media_reco.save_model(model_name text, model bytea, feature_names text[] DEFAULT NULL)
RETURNS void AS 'MODULE_PATHNAME', 'save_model'
-- VOLATILE, PARALLEL UNSAFE: writes media_reco.models; not STRICT: feature_names NULL
-- names the features features[1], features[2], ...
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION media_reco.save_model(text, bytea, text[]) IS
    'Store a model value (e.g. from forest_fit) under a name after validating it; its input is a float8[] column named "features".';

CREATE FUNCTION media_reco.drop_model(model_name text)
RETURNS void AS 'MODULE_PATHNAME', 'drop_model'
-- VOLATILE, PARALLEL UNSAFE: deletes from media_reco.models; not STRICT: a NULL name is
-- 22004.
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION media_reco.drop_model(text) IS
    'Delete a named model; an unknown name is an error.';

CREATE FUNCTION media_reco.model_cache()
RETURNS TABLE(model_name text, bytes bigint, loads bigint, checks bigint)
AS 'MODULE_PATHNAME', 'model_cache_info'
-- VOLATILE: reports this backend's cache, which the predict calls of the same query
-- change; PARALLEL RESTRICTED: a parallel worker has a cache of its own, so only the
-- leader answers.
LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION media_reco.model_cache() IS
    'Models cached in this backend: memory held, how often the bytes were loaded (once per row version) and how often the row was checked (once per query and call site).';

-- ===========================================================================
-- 11. Random forests: the forest_fit aggregate and train_forest
-- ===========================================================================

-- forest_fit: an aggregate over feature arrays
CREATE FUNCTION media_reco.forest_fit_transfn(internal, double precision[], double precision, jsonb)
RETURNS internal AS 'MODULE_PATHNAME', 'forest_fit_transfn'
-- not STRICT: the internal state starts as NULL and is allocated on the first row; rows
-- with NULL features or label are skipped here, a NULL options is 22004.
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION media_reco.forest_fit_transfn(internal, double precision[], double precision, jsonb) IS
    'Transition function of media_reco.forest_fit: appends a row.';
CREATE FUNCTION media_reco.forest_fit_transfn(internal, double precision[], double precision)
RETURNS internal AS 'MODULE_PATHNAME', 'forest_fit_transfn'
-- not STRICT: as the one with options (the same C function, taking the default options).
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION media_reco.forest_fit_transfn(internal, double precision[], double precision) IS
    'Transition function of media_reco.forest_fit without options: appends a row.';
CREATE FUNCTION media_reco.forest_fit_combine(internal, internal)
RETURNS internal AS 'MODULE_PATHNAME', 'forest_fit_combine'
-- not STRICT: required for an internal state (a worker that saw no rows passes NULL; a
-- state from a worker is copied into the aggregate context).
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION media_reco.forest_fit_combine(internal, internal) IS
    'Combine function of media_reco.forest_fit (parallel aggregation): concatenates rows.';
CREATE FUNCTION media_reco.forest_fit_serialize(internal)
RETURNS bytea AS 'MODULE_PATHNAME', 'forest_fit_serialize'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION media_reco.forest_fit_serialize(internal) IS
    'Serial function of media_reco.forest_fit (parallel aggregation).';
CREATE FUNCTION media_reco.forest_fit_deserialize(bytea, internal)
RETURNS internal AS 'MODULE_PATHNAME', 'forest_fit_deserialize'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION media_reco.forest_fit_deserialize(bytea, internal) IS
    'Deserial function of media_reco.forest_fit (parallel aggregation).';
CREATE FUNCTION media_reco.forest_fit_final(internal)
RETURNS bytea AS 'MODULE_PATHNAME', 'forest_fit_final'
-- IMMUTABLE: the model depends only on the rows and options (seeded; not on row order,
-- plan or media_reco.threads); not STRICT: no rows is an error (22000), not NULL.
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION media_reco.forest_fit_final(internal) IS
    'Final function of media_reco.forest_fit: trains the forest and returns the model bytes.';

CREATE AGGREGATE media_reco.forest_fit(features double precision[], label double precision, options jsonb) (
    SFUNC = media_reco.forest_fit_transfn,
    STYPE = internal,
    FINALFUNC = media_reco.forest_fit_final,
    COMBINEFUNC = media_reco.forest_fit_combine,
    SERIALFUNC = media_reco.forest_fit_serialize,
    DESERIALFUNC = media_reco.forest_fit_deserialize,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE media_reco.forest_fit(double precision[], double precision, jsonb) IS
    'Train a random forest on feature arrays and labels (rows with a NULL label or features skipped; NULL/NaN elements are missing values); returns the model bytes. The model does not depend on row order or parallelism.';
CREATE AGGREGATE media_reco.forest_fit(features double precision[], label double precision) (
    SFUNC = media_reco.forest_fit_transfn,
    STYPE = internal,
    FINALFUNC = media_reco.forest_fit_final,
    COMBINEFUNC = media_reco.forest_fit_combine,
    SERIALFUNC = media_reco.forest_fit_serialize,
    DESERIALFUNC = media_reco.forest_fit_deserialize,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE media_reco.forest_fit(double precision[], double precision) IS
    'forest_fit with the default options (classification, 100 trees).';

CREATE FUNCTION media_reco.train_forest(model_name text, source regclass,
    label_col name, feature_cols name[] DEFAULT NULL, options jsonb DEFAULT '{}')
RETURNS TABLE(model_name text, rows bigint, features integer, classes integer,
              oob_score double precision, seconds double precision)
AS 'MODULE_PATHNAME', 'train_forest'
-- VOLATILE, PARALLEL UNSAFE: writes media_reco.models; not STRICT: feature_cols NULL means
-- every other supported column.
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION media_reco.train_forest(text, regclass, name, name[], jsonb) IS
    'Train a random forest from a table or view by column names (NULL feature_cols: every other supported column) and store it in media_reco.models under model_name, replacing a model of that name.';

CREATE FUNCTION media_reco.feature_importance(model_name text)
RETURNS TABLE(feature text, importance double precision, rank integer)
AS 'MODULE_PATHNAME', 'feature_importance'
-- STABLE: reads media_reco.models; PARALLEL SAFE and STRICT: as predict.
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION media_reco.feature_importance(text) IS
    'Impurity-based importance of each feature of a named forest (mean decrease in impurity, each tree normalised, summing to 1), most important first; an error (55000) when no tree made a split.';

-- ===========================================================================
-- 12. Feed-forward networks (ad targeting: a softmax over the ads, on OpenBLAS)
-- ===========================================================================

CREATE FUNCTION media_reco.train_mlp(model_name text, source regclass,
    label_col name, feature_cols name[] DEFAULT NULL, options jsonb DEFAULT '{}')
RETURNS TABLE(model_name text, rows bigint, features integer, classes integer, epochs integer,
              train_loss double precision, validation_accuracy double precision, seconds double precision)
AS 'MODULE_PATHNAME', 'train_mlp'
-- VOLATILE, PARALLEL UNSAFE: writes media_reco.models; not STRICT: feature_cols NULL means
-- every other supported column.
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION media_reco.train_mlp(text, regclass, name, name[], jsonb) IS
    'Train a feed-forward network (hidden layers, softmax over the classes, or one linear output for regression) from a relation by column names, with mini-batch Adam or SGD on OpenBLAS, and store it in media_reco.models; validation_accuracy is R² for regression.';

-- ===========================================================================
-- 13. Prediction from named models and from model values
-- ===========================================================================

CREATE FUNCTION media_reco.predict(model_name text, features double precision[])
RETURNS double precision AS 'MODULE_PATHNAME', 'predict_name'
-- STABLE: reads media_reco.models (a retrain is seen by the next statement); PARALLEL
-- SAFE: a parallel worker loads the model into its own cache; STRICT: NULL features
-- predict NULL.
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION media_reco.predict(text, double precision[]) IS
    'Predicted class (classification; ties to the smaller class) or value (regression) of a named model for a feature array; the model is loaded once per backend and cached until its row changes.';
CREATE FUNCTION media_reco.predict(model_name text, "row" record)
RETURNS double precision AS 'MODULE_PATHNAME', 'predict_name_row'
-- STABLE, PARALLEL SAFE, STRICT: as predict(text, double precision[]).
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION media_reco.predict(text, record) IS
    'Prediction of a named model for a row: the model''s columns matched by name (extra columns ignored; categories as raw values, unseen ones missing).';
CREATE FUNCTION media_reco.predict_proba(model_name text, features double precision[])
RETURNS double precision[] AS 'MODULE_PATHNAME', 'predict_proba_name'
-- STABLE, PARALLEL SAFE, STRICT: as predict(text, double precision[]).
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION media_reco.predict_proba(text, double precision[]) IS
    'Class probabilities of a named classification model for a feature array, in the order of media_reco.models.classes.';
CREATE FUNCTION media_reco.predict_proba(model_name text, "row" record)
RETURNS double precision[] AS 'MODULE_PATHNAME', 'predict_proba_name_row'
-- STABLE, PARALLEL SAFE, STRICT: as predict(text, double precision[]).
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION media_reco.predict_proba(text, record) IS
    'Class probabilities of a named classification model for a row (columns matched by name), in classes order.';
CREATE FUNCTION media_reco.predict(model bytea, features double precision[])
RETURNS double precision AS 'MODULE_PATHNAME', 'predict_blob'
-- IMMUTABLE: a function of the model bytes and the features alone (a call site reuses a
-- loaded model only for bytes proved identical); STRICT: NULL predicts NULL.
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION media_reco.predict(bytea, double precision[]) IS
    'Prediction of a model value (e.g. from forest_fit) for a feature array; the value is validated and loaded once per call site.';
CREATE FUNCTION media_reco.predict_proba(model bytea, features double precision[])
RETURNS double precision[] AS 'MODULE_PATHNAME', 'predict_proba_blob'
-- IMMUTABLE, STRICT: as predict(bytea, double precision[]).
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION media_reco.predict_proba(bytea, double precision[]) IS
    'Class probabilities of a classification model value for a feature array, classes in ascending order.';

CREATE FUNCTION media_reco.top_classes(model_name text, features double precision[], k integer DEFAULT 3)
RETURNS TABLE(class double precision, probability double precision, rank integer)
AS 'MODULE_PATHNAME', 'top_classes'
-- STABLE: reads media_reco.models; PARALLEL SAFE and STRICT: as predict.
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION media_reco.top_classes(text, double precision[], integer) IS
    'The k most probable classes (e.g. ads) of a named classification model for a feature array, ties to the smaller class.';

-- ===========================================================================
-- 14. Explaining predictions: per-row attributions (TreeSHAP, integrated gradients)
-- ===========================================================================

-- All of them: STABLE: read media_reco.models (and media_reco.explain_steps for networks);
-- not STRICT: class NULL means the predicted class (a NULL model name, features or row is
-- 22004).  explain_prediction and explain_base_value are PARALLEL SAFE as predict: a
-- worker loads the model into its own cache.
CREATE FUNCTION media_reco.explain_prediction(model_name text, features double precision[],
    class double precision DEFAULT NULL)
RETURNS TABLE(feature text, value double precision, contribution double precision, rank integer)
AS 'MODULE_PATHNAME', 'explain_prediction_array'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION media_reco.explain_prediction(text, double precision[], double precision) IS
    'Per-feature contributions to a named model''s output for a feature array (the probability of class, by default the predicted class, or the regression value): exact path-dependent TreeSHAP for forests, integrated gradients for networks; they sum to the output minus explain_base_value. Ranked by |contribution|, ties by feature order.';
CREATE FUNCTION media_reco.explain_prediction(model_name text, "row" record,
    class double precision DEFAULT NULL)
RETURNS TABLE(feature text, value double precision, contribution double precision, rank integer)
AS 'MODULE_PATHNAME', 'explain_prediction_row'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION media_reco.explain_prediction(text, record, double precision) IS
    'explain_prediction for a row, the model''s columns matched by name: one row per model feature (a number, boolean or category column is one feature, an array column one per element).';
CREATE FUNCTION media_reco.explain_base_value(model_name text, class double precision DEFAULT NULL)
RETURNS double precision AS 'MODULE_PATHNAME', 'explain_base_value'
-- not STRICT: a NULL class of a classifier is 22004 with a hint, not a silent NULL.
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION media_reco.explain_base_value(text, double precision) IS
    'The output explain_prediction''s contributions start from: the cover-weighted mean output of a forest, a network''s output at the training mean (all-zero standardised input); class is required for a classifier.';
CREATE FUNCTION media_reco.explain_completeness(model_name text, features double precision[],
    class double precision DEFAULT NULL)
RETURNS TABLE(output double precision, base_value double precision,
              contributions double precision, completeness_error double precision,
              method text, steps integer, pieces integer) AS 'MODULE_PATHNAME', 'explain_completeness_array'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION media_reco.explain_completeness(text, double precision[], double precision) IS
    'One row: how exactly explain_prediction''s contributions add up for a feature array: the output, the base value, their sum and the completeness error sum - (output - base_value); method treeshap or integrated_gradients, with its Gauss-Legendre steps per piece (media_reco.explain_steps) and the pieces the path was cut into (a relu network: where a hidden unit changes sign).';
CREATE FUNCTION media_reco.explain_completeness(model_name text, "row" record,
    class double precision DEFAULT NULL)
RETURNS TABLE(output double precision, base_value double precision,
              contributions double precision, completeness_error double precision,
              method text, steps integer, pieces integer) AS 'MODULE_PATHNAME', 'explain_completeness_row'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION media_reco.explain_completeness(text, record, double precision) IS
    'explain_completeness for a row, the model''s columns matched by name.';
CREATE FUNCTION media_reco.shap_importance(model_name text, source regclass,
    sample integer DEFAULT 1000, seed bigint DEFAULT 0)
RETURNS TABLE(feature text, importance double precision, rank integer)
AS 'MODULE_PATHNAME', 'shap_importance'
-- STABLE: reads the source and media_reco.models; PARALLEL RESTRICTED: the source may be a
-- temporary table; not STRICT: a NULL argument is 22004.
LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION media_reco.shap_importance(text, regclass, integer, bigint) IS
    'Global importance from explanations: the mean |contribution| of each feature to each sampled row''s predicted class (or value) over a seeded sample of the source''s rows (the sample rows with the smallest hashint8extended(scan position, seed); every row when sample >= the row count).';

-- ===========================================================================
-- 15. Evaluating classifiers: parallel aggregates
-- ===========================================================================

CREATE FUNCTION media_reco.roc_auc_accum(internal, double precision, boolean)
RETURNS internal AS 'MODULE_PATHNAME', 'roc_auc_accum'
-- not STRICT: the internal state starts as NULL and is allocated on the first row; NULL
-- rows are skipped here.
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION media_reco.roc_auc_accum(internal, double precision, boolean) IS
    'Transition function of media_reco.roc_auc.';
CREATE FUNCTION media_reco.roc_auc_combine(internal, internal)
RETURNS internal AS 'MODULE_PATHNAME', 'roc_auc_combine'
-- not STRICT: required for an internal state (see forest_fit_combine).
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
-- not STRICT, like its transition function: a NULL state (no rows) answers NULL.
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
-- not STRICT: rows with a NULL p or label are skipped here (as STRICT would skip them: the
-- state is never NULL, INITCOND is {0,0}).
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

-- confusion_matrix: an aggregate over (predicted, actual) class pairs
CREATE FUNCTION media_reco.confusion_matrix_accum(internal, double precision, double precision)
RETURNS internal AS 'MODULE_PATHNAME', 'confusion_matrix_accum'
-- not STRICT: the internal state starts as NULL and is allocated on the first row; NULL
-- rows are skipped here.
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION media_reco.confusion_matrix_accum(internal, double precision, double precision) IS
    'Transition function of media_reco.confusion_matrix.';
CREATE FUNCTION media_reco.confusion_matrix_combine(internal, internal)
RETURNS internal AS 'MODULE_PATHNAME', 'confusion_matrix_combine'
-- not STRICT: required for an internal state (see forest_fit_combine).
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION media_reco.confusion_matrix_combine(internal, internal) IS
    'Combine function of media_reco.confusion_matrix (parallel aggregation).';
CREATE FUNCTION media_reco.confusion_matrix_serialize(internal)
RETURNS bytea AS 'MODULE_PATHNAME', 'confusion_matrix_serialize'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION media_reco.confusion_matrix_serialize(internal) IS
    'Serial function of media_reco.confusion_matrix (parallel aggregation).';
CREATE FUNCTION media_reco.confusion_matrix_deserialize(bytea, internal)
RETURNS internal AS 'MODULE_PATHNAME', 'confusion_matrix_deserialize'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION media_reco.confusion_matrix_deserialize(bytea, internal) IS
    'Deserial function of media_reco.confusion_matrix (parallel aggregation).';
CREATE FUNCTION media_reco.confusion_matrix_final(internal)
RETURNS jsonb AS 'MODULE_PATHNAME', 'confusion_matrix_final'
-- not STRICT, like its transition function: a NULL state (no rows) answers NULL.
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION media_reco.confusion_matrix_final(internal) IS
    'Final function of media_reco.confusion_matrix: the matrix and per-class figures as jsonb.';
CREATE AGGREGATE media_reco.confusion_matrix(predicted double precision, actual double precision) (
    SFUNC = media_reco.confusion_matrix_accum,
    STYPE = internal,
    FINALFUNC = media_reco.confusion_matrix_final,
    COMBINEFUNC = media_reco.confusion_matrix_combine,
    SERIALFUNC = media_reco.confusion_matrix_serialize,
    DESERIALFUNC = media_reco.confusion_matrix_deserialize,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE media_reco.confusion_matrix(double precision, double precision) IS
    'Confusion matrix of predicted against actual classes as jsonb: classes (ascending), matrix[actual][predicted], total, accuracy, and per-class precision, recall, F1 and support; NULL rows skipped.';

-- ===========================================================================
-- 16. Synthetic media catalogue (demo, tests, benchmarks)
-- ===========================================================================

CREATE FUNCTION media_reco.synthetic_items(items integer, seed bigint DEFAULT 1)
RETURNS TABLE(item_id bigint, title text, genre text, popularity_rank integer)
AS 'MODULE_PATHNAME', 'synthetic_items'
-- IMMUTABLE: the same arguments give the same rows (seeded pg_prng); not STRICT: a NULL
-- argument is 22004.
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION media_reco.synthetic_items(integer, bigint) IS
    'A reproducible synthetic catalogue: item ids 1..items with a genre and a popularity rank (same seed, same rows).';

CREATE FUNCTION media_reco.synthetic_interactions(users integer, items integer,
                                                  interactions bigint, seed bigint DEFAULT 1)
RETURNS TABLE(user_id bigint, item_id bigint, plays integer, rating real,
              watched_at timestamptz)
AS 'MODULE_PATHNAME', 'synthetic_interactions'
-- IMMUTABLE: the same arguments give the same rows (seeded pg_prng, timestamps from a
-- fixed 2025-01-01, not now()); not STRICT: a NULL argument is 22004.
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION media_reco.synthetic_interactions(integer, integer, bigint, bigint) IS
    'A reproducible synthetic viewing log over synthetic_items(items, seed): Zipf-like item popularity, heavy-tailed user activity, genre-loyal users, repeat views, ratings and timestamps in 2025.';

-- ===========================================================================
-- 17. Running on a Citus cluster (0.6.0)
-- ===========================================================================

-- Makes media_reco's own tables Citus reference tables (a copy on every node),
-- so that recommenders, neighbour lists, refresh history, ALS models and named
-- models are readable on every node: predict() pushed down to the workers with
-- a distributed table's rows loads its model there.  Run it on the coordinator,
-- once Citus is installed and the workers are added; running it again does
-- nothing for the tables already done.  The foreign keys between these tables
-- (neighbor_store -> recommenders, item_factors and user_factors -> als_models)
-- are dropped on every node while the tables are converted (Citus cannot make a
-- referenced table a reference table while a local table points at it) and
-- recreated between the reference tables, with their names and definitions.
-- The rows already there are copied into the shards and the coordinator's
-- local copies truncated.  SECURITY INVOKER: the caller must own the tables
-- (the extension's owner or a superuser); search_path pinned, every Citus call
-- qualified.  55000 when Citus is not installed in this database or this node
-- is not the coordinator.
CREATE FUNCTION media_reco.citus_setup()
RETURNS TABLE(relation regclass, citus_table_type text)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $citus_setup$
DECLARE
    tabs regclass[] := ARRAY['media_reco.recommenders', 'media_reco.neighbor_store',
                             'media_reco.refresh_history', 'media_reco.als_models',
                             'media_reco.item_factors', 'media_reco.user_factors',
                             'media_reco.models']::regclass[];
    t regclass;
    fk record;
    fks text[][] := '{}';
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension
                    WHERE extname OPERATOR(pg_catalog.=) 'citus') THEN
        RAISE EXCEPTION 'citus is not installed in this database'
            USING ERRCODE = '55000',
                  HINT = 'Install Citus (test/citus/build.sh builds it), add citus to shared_preload_libraries, CREATE EXTENSION citus and add the workers first.';
    END IF;
    IF NOT pg_catalog.citus_is_coordinator() THEN
        RAISE EXCEPTION 'media_reco.citus_setup() must run on the Citus coordinator'
            USING ERRCODE = '55000';
    END IF;

    -- the foreign keys among the tables still to convert, dropped everywhere for now
    FOR fk IN
        SELECT c.conrelid::regclass AS rel, c.conname,
               pg_catalog.pg_get_constraintdef(c.oid) AS def
          FROM pg_catalog.pg_constraint c
         WHERE c.contype OPERATOR(pg_catalog.=) 'f'
           AND c.conrelid OPERATOR(pg_catalog.=) ANY (tabs::oid[])
           AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition p
                            WHERE p.logicalrelid OPERATOR(pg_catalog.=) c.conrelid)
         ORDER BY 1, 2
    LOOP
        fks := fks OPERATOR(pg_catalog.||)
               ARRAY[ARRAY[fk.rel::text, pg_catalog.quote_ident(fk.conname), fk.def]];
        EXECUTE pg_catalog.format('ALTER TABLE %s DROP CONSTRAINT %I', fk.rel, fk.conname);
        PERFORM pg_catalog.run_command_on_workers(
            pg_catalog.format('ALTER TABLE %s DROP CONSTRAINT IF EXISTS %I', fk.rel, fk.conname));
    END LOOP;

    FOREACH t IN ARRAY tabs LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition p
                        WHERE p.logicalrelid OPERATOR(pg_catalog.=) t) THEN
            PERFORM pg_catalog.create_reference_table(t);
            PERFORM pg_catalog.truncate_local_data_after_distributing_table(t);
        END IF;
    END LOOP;

    FOR i IN 1 .. COALESCE(pg_catalog.array_length(fks, 1), 0) LOOP
        EXECUTE pg_catalog.format('ALTER TABLE %s ADD CONSTRAINT %s %s',
                                  fks[i][1], fks[i][2], fks[i][3]);
    END LOOP;

    RETURN QUERY
        SELECT p.logicalrelid, CASE p.partmethod WHEN 'n' THEN 'reference' ELSE 'distributed' END
          FROM pg_catalog.pg_dist_partition p
         WHERE p.logicalrelid OPERATOR(pg_catalog.=) ANY (tabs::oid[])
         ORDER BY p.logicalrelid::text;
END
$citus_setup$;
COMMENT ON FUNCTION media_reco.citus_setup() IS
    'On a Citus coordinator: make media_reco''s tables (recommenders, neighbor_store, refresh_history, als_models, item_factors, user_factors, models) reference tables, so every node reads them (predict pushed down to workers, recommend from any node); returns each table and its Citus table type. 55000 without Citus.';

-- ===========================================================================
-- 18. A refresh's pair sums on the Citus workers (0.7.0; the metric form 0.9.0)
-- ===========================================================================

-- The aggregate media_reco.pair_sums: per shard of a source distributed by
-- user, the pair sums Σ_u w(u,i)·w(u,j), co-occurrence counts and item
-- degrees as bytes; Citus pushes it down (a bytea state with a combine
-- function) and gathers one state per shard on the coordinator, where
-- pair_sums_neighbors (or refresh_neighbors itself) merges them exactly.
-- The rows of one user must all reach the same state: it is PARALLEL UNSAFE
-- (PostgreSQL's parallel workers would split users), and is meant for a
-- local table or a table distributed by its user column.
-- not STRICT: the first call starts from a NULL state; rows with a NULL
-- user, item or weight are skipped.  PARALLEL UNSAFE: see above.
CREATE FUNCTION media_reco.pair_sums_step(state bytea, user_id bigint, item_id bigint,
    weight double precision, weighted boolean, weight_col text)
RETURNS bytea
LANGUAGE C IMMUTABLE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'pair_sums_step';
COMMENT ON FUNCTION media_reco.pair_sums_step(bytea, bigint, bigint, double precision, boolean, text) IS
    'Transition function of media_reco.pair_sums (only callable by the aggregate).';

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

-- not STRICT: either state may be NULL (a shard without rows).
CREATE FUNCTION media_reco.pair_sums_combine(a bytea, b bytea)
RETURNS bytea
LANGUAGE C IMMUTABLE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'pair_sums_combine';
COMMENT ON FUNCTION media_reco.pair_sums_combine(bytea, bytea) IS
    'Combine function of media_reco.pair_sums: collects the shards'' states (only callable by the aggregate).';

-- not STRICT: a NULL state (no rows) gives an empty bundle.
CREATE FUNCTION media_reco.pair_sums_final(state bytea)
RETURNS bytea
LANGUAGE C IMMUTABLE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'pair_sums_final';
COMMENT ON FUNCTION media_reco.pair_sums_final(bytea) IS
    'Final function of media_reco.pair_sums: the bundle of the shards'' encoded pair sums.';

CREATE AGGREGATE media_reco.pair_sums(user_id bigint, item_id bigint, weight double precision,
    weighted boolean, weight_col text) (
    SFUNC = media_reco.pair_sums_step,
    STYPE = bytea,
    COMBINEFUNC = media_reco.pair_sums_combine,
    FINALFUNC = media_reco.pair_sums_final,
    PARALLEL = UNSAFE
);
COMMENT ON AGGREGATE media_reco.pair_sums(bigint, bigint, double precision, boolean, text) IS
    'Per-shard pair sums, co-occurrence counts and item degrees of (user, item, weight) rows as bytes (weighted false: counts only; weight_col names the column in errors); on a Citus table distributed by user each worker sums its shards. Merge with pair_sums_neighbors. The rows of a user must not be split across states.';

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

-- not STRICT: a NULL argument is an error (22004) naming it.
CREATE FUNCTION media_reco.pair_sums_neighbors(bundle bytea, metric text DEFAULT 'cosine',
    k integer DEFAULT 20, min_support integer DEFAULT 1, shrinkage double precision DEFAULT 0)
RETURNS TABLE(item_id bigint, neighbor_id bigint, similarity double precision, support integer, rank integer)
LANGUAGE C IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'pair_sums_neighbors';
COMMENT ON FUNCTION media_reco.pair_sums_neighbors(bytea, text, integer, integer, double precision) IS
    'Merge the bundle of media_reco.pair_sums into the top-k neighbours of every item (cosine, adjusted_cosine, jaccard, conditional or bm25; adjusted_cosine and bm25 from pair_sums with that metric, 22023 for sums of other weights or, for bm25, of another mean length), bit for bit the lists item_similarity computes over the same rows; weights off a power-of-two grid (ln(1 + plays)) merge as fixed-point sums, exactly as one server adds them; 0A000 when an item''s weights span 2^22 : 1 or more (its fixed-point sums would be cut), 22P03 for damaged bytes.';

-- not STRICT: a NULL argument is an error (22004) naming it; NULL elements are skipped.
CREATE FUNCTION media_reco.pair_sums_neighbors(bundles bytea[], metric text DEFAULT 'cosine',
    k integer DEFAULT 20, min_support integer DEFAULT 1, shrinkage double precision DEFAULT 0)
RETURNS TABLE(item_id bigint, neighbor_id bigint, similarity double precision, support integer, rank integer)
LANGUAGE C IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'pair_sums_neighbors';
COMMENT ON FUNCTION media_reco.pair_sums_neighbors(bytea[], text, integer, integer, double precision) IS
    'pair_sums_neighbors over several bundles merged as one (e.g. pair_sums grouped by disjoint sets of users, or computed on several servers); the users of different bundles must be disjoint.';
