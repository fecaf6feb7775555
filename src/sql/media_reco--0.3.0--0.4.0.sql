-- media_reco 0.3.0 -> 0.4.0 (the C library of 0.4.0 still serves a 0.3.0,
-- 0.2.0 or 0.1.0 schema, so install it first).
-- Names qualified as in the install script (see its header).  Every object is
-- left exactly as a fresh 0.4.0 install creates it (test/t/007_upgrade.pl
-- compares the catalogues).

\echo Use "ALTER EXTENSION media_reco UPDATE TO '0.4.0'" to load this file. \quit

-- The neighbour lists inline and uncompressed where they fit (see the install
-- script).  Neither statement rewrites the table: lists stored before the
-- update keep their old (compressed or out-of-line) form until the next
-- refresh_neighbors of their recommender rewrites them.
ALTER TABLE media_reco.neighbor_store SET (toast_tuple_target = 4000);
ALTER TABLE media_reco.neighbor_store ALTER COLUMN neighbor_ids SET STORAGE MAIN,
                                      ALTER COLUMN similarities SET STORAGE MAIN;

-- Implicit ALS matrix factorisation (section 8 of the install script).

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
BEGIN
    UPDATE media_reco.als_models m
       SET source = NULL, dropped_source = d.object_identity
      FROM pg_catalog.pg_event_trigger_dropped_objects() d
     WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::regclass
       AND d.objsubid OPERATOR(pg_catalog.=) 0
       AND m.source::oid OPERATOR(pg_catalog.=) d.objid;
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

