-- media_reco 0.6.0 -> 0.7.0 (the C library of 0.7.0 still serves a 0.6.0 schema, so
-- install it first).  Names qualified as in the install script (see its header).
-- Every object is left exactly as a fresh 0.7.0 install creates it
-- (test/t/007_upgrade.pl compares the catalogues).  0.7.0 adds the aggregate
-- pair_sums and pair_sums_neighbors (section 18 of the install script), which
-- refresh_neighbors uses on a Citus table distributed by user, and the two
-- event trigger functions no longer update media_reco's reference tables on
-- a Citus worker nor send pg_event_trigger_dropped_objects() to the nodes
-- (a DROP TABLE of a Citus source failed after citus_setup()); nothing else
-- changes.

\echo Use "ALTER EXTENSION media_reco UPDATE TO '0.7.0'" to load this file. \quit
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

-- not STRICT: a NULL argument is an error (22004) naming it.
CREATE FUNCTION media_reco.pair_sums_neighbors(bundle bytea, metric text DEFAULT 'cosine',
    k integer DEFAULT 20, min_support integer DEFAULT 1, shrinkage double precision DEFAULT 0)
RETURNS TABLE(item_id bigint, neighbor_id bigint, similarity double precision, support integer, rank integer)
LANGUAGE C IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'pair_sums_neighbors';
COMMENT ON FUNCTION media_reco.pair_sums_neighbors(bytea, text, integer, integer, double precision) IS
    'Merge the bundle of media_reco.pair_sums into the top-k neighbours of every item (cosine, jaccard or conditional), bit for bit the lists item_similarity computes over the same rows; 0A000 when the weights are not multiples of one power of two (their sums would depend on the order of addition), 22P03 for damaged bytes.';

-- not STRICT: a NULL argument is an error (22004) naming it; NULL elements are skipped.
CREATE FUNCTION media_reco.pair_sums_neighbors(bundles bytea[], metric text DEFAULT 'cosine',
    k integer DEFAULT 20, min_support integer DEFAULT 1, shrinkage double precision DEFAULT 0)
RETURNS TABLE(item_id bigint, neighbor_id bigint, similarity double precision, support integer, rank integer)
LANGUAGE C IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'pair_sums_neighbors';
COMMENT ON FUNCTION media_reco.pair_sums_neighbors(bytea[], text, integer, integer, double precision) IS
    'pair_sums_neighbors over several bundles merged as one (e.g. pair_sums grouped by disjoint sets of users, or computed on several servers); the users of different bundles must be disjoint.';

-- The event trigger functions, as in the install script: nothing on a Citus
-- worker, and no event-trigger function inside the UPDATEs Citus sends to the
-- nodes (a DROP TABLE of a Citus source failed after citus_setup()).
CREATE OR REPLACE FUNCTION media_reco.mark_dropped_sources()
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

CREATE OR REPLACE FUNCTION media_reco.mark_dropped_als_sources()
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
