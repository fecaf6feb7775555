-- media_reco 0.2.0 -> 0.3.0: the learned item-item models EASE and RP3beta
-- as metrics of the existing recommender (the C library of 0.3.0 still
-- serves a 0.2.0 or 0.1.0 schema, so install it first).
-- Names qualified as in the install script (see its header): media_reco.x,
-- pg_catalog.x functions and relations, OPERATOR(pg_catalog.x), plain type
-- names.  Every object is left exactly as a fresh 0.3.0 install creates it
-- (test/t/007_upgrade.pl compares the catalogues).

\echo Use "ALTER EXTENSION media_reco UPDATE TO '0.3.0'" to load this file. \quit

-- The released 0.2.0 script wrote the event trigger's function with
-- qualified type names (::pg_catalog.regclass, ::pg_catalog.oid); the install
-- script now writes them plain.  Same behaviour, other body text: it is
-- re-created here, so that an updated catalogue equals a fresh one.  The
-- event trigger goes first, so that nothing below fires it.
DROP EVENT TRIGGER media_reco_source_dropped;
DROP FUNCTION media_reco.mark_dropped_sources();

-- The registry: the two metrics and their options (NULL: the default).
ALTER TABLE media_reco.recommenders DROP CONSTRAINT recommenders_metric_check;
ALTER TABLE media_reco.recommenders ADD CONSTRAINT recommenders_metric_check
    CHECK (metric OPERATOR(pg_catalog.=) ANY (ARRAY['cosine', 'jaccard', 'adjusted_cosine',
                                                    'pearson', 'conditional', 'bm25',
                                                    'ease', 'rp3beta']));
ALTER TABLE media_reco.recommenders
    ADD COLUMN ease_lambda double precision
        CHECK (ease_lambda OPERATOR(pg_catalog.>) 0
               AND ease_lambda OPERATOR(pg_catalog.<) 'Infinity'::double precision),
    ADD COLUMN rp3_alpha double precision
        CHECK (rp3_alpha OPERATOR(pg_catalog.>) 0
               AND rp3_alpha OPERATOR(pg_catalog.<) 'Infinity'::double precision),
    ADD COLUMN rp3_beta double precision
        CHECK (rp3_beta OPERATOR(pg_catalog.>=) 0
               AND rp3_beta OPERATOR(pg_catalog.<) 'Infinity'::double precision),
    ADD COLUMN ease_max_items integer
        CHECK (ease_max_items OPERATOR(pg_catalog.>=) 1);
COMMENT ON COLUMN media_reco.recommenders.ease_lambda IS
    'EASE''s L2 regularisation lambda (> 0) as given to create_recommender; NULL means the default (README, "Learned item-item models").';
COMMENT ON COLUMN media_reco.recommenders.rp3_alpha IS
    'RP3beta''s exponent on the transition probabilities (> 0) as given to create_recommender; NULL means the default, 1.0.';
COMMENT ON COLUMN media_reco.recommenders.rp3_beta IS
    'RP3beta''s popularity penalty (>= 0) as given to create_recommender; NULL means the default, 0.5.';
COMMENT ON COLUMN media_reco.recommenders.ease_max_items IS
    'EASE covers only the ease_max_items most popular items (most distinct users, ties to the smaller id), the others getting no EASE neighbours; NULL means every item.';
COMMENT ON COLUMN media_reco.refresh_history.parameters IS
    'The parameters in effect (source, columns, metric, k, min_support, shrinkage, decay, bm25_k1, bm25_b, ease_lambda, ease_max_items (null: every item), rp3_alpha, rp3_beta), distinct_pairs and threads; for ease also ease_items (the items its dense matrix covers) and phases (seconds of gram, factor, invert, select).';

-- The event trigger's function, as the install script creates it.
CREATE FUNCTION media_reco.mark_dropped_sources()
RETURNS event_trigger
-- VOLATILE: it updates the registry (SECURITY DEFINER: see the install script).
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $body$
BEGIN
    UPDATE media_reco.recommenders r
       SET source = NULL, dropped_source = d.object_identity
      FROM pg_catalog.pg_event_trigger_dropped_objects() d
     WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::regclass
       AND d.objsubid OPERATOR(pg_catalog.=) 0
       AND r.source::oid OPERATOR(pg_catalog.=) d.objid;
END
$body$;
REVOKE ALL ON FUNCTION media_reco.mark_dropped_sources() FROM PUBLIC;
COMMENT ON FUNCTION media_reco.mark_dropped_sources() IS
    'Event trigger function (sql_drop): marks the recommenders whose source relation was dropped (source NULL, dropped_source its old name).';

-- item_similarity and create_recommender take the new options as named
-- parameters after bm25_b: a new signature, so the old function is dropped
-- (nothing in the extension depends on it, and neither had grants).
DROP FUNCTION media_reco.item_similarity(regclass, name, name, name, text, integer, integer,
                                         double precision, double precision, double precision);
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
-- STABLE, PARALLEL RESTRICTED, not STRICT: see the install script.
LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION media_reco.item_similarity(regclass, name, name, name, text, integer, integer, double precision, double precision, double precision, double precision, double precision, double precision, integer) IS
    'Computes the top-k item neighbours (cosine, jaccard, adjusted_cosine, pearson, conditional, bm25 with K1 = bm25_k1 and B = bm25_b, ease with lambda = ease_lambda over the ease_max_items most popular items, or rp3beta with alpha = rp3_alpha and beta = rp3_beta; with min_support and shrinkage) over an interaction table and returns them without storing anything. Options of another metric are checked and ignored; NULL options mean their defaults.';

DROP FUNCTION media_reco.create_recommender(text, regclass, name, name, name, text, integer, integer,
                                            double precision, name, interval, double precision,
                                            double precision);
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
-- VOLATILE, PARALLEL UNSAFE, not STRICT: see the install script.
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION media_reco.create_recommender(text, regclass, name, name, name, text, integer, integer, double precision, name, interval, double precision, double precision, double precision, double precision, double precision, integer) IS
    'Registers an item-to-item recommender over a source relation after validating the source, its columns and the parameters (with time_col and half_life, each interaction weighs 0.5^(age / half_life); metric ease or rp3beta take ease_lambda and ease_max_items, or rp3_alpha and rp3_beta, NULL meaning the default, options of another metric checked and ignored). Call refresh_neighbors to fill its neighbour table.';

-- Last: the event trigger again (its comment as in the install script).
CREATE EVENT TRIGGER media_reco_source_dropped ON sql_drop
    EXECUTE FUNCTION media_reco.mark_dropped_sources();
COMMENT ON EVENT TRIGGER media_reco_source_dropped IS
    'Keeps media_reco.recommenders free of dangling source OIDs: a dropped source is marked, with its old name, by media_reco.mark_dropped_sources().';
