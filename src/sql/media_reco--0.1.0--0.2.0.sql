-- media_reco 0.1.0 -> 0.2.0: the schema delta, nothing else (the C library
-- of 0.2.0 still provides every symbol the 0.1.0 script names).
-- Names qualified as in the install script (see its header): media_reco.x,
-- pg_catalog.x functions and relations, OPERATOR(pg_catalog.x), plain type
-- names.  mark_dropped_sources is created here exactly as the install script
-- creates it (same body text), so an updated catalogue equals a fresh one.

\echo Use "ALTER EXTENSION media_reco UPDATE TO '0.2.0'" to load this file. \quit

-- A dropped source no longer leaves a dangling OID in the registry.
ALTER TABLE media_reco.recommenders ALTER COLUMN source DROP NOT NULL;
ALTER TABLE media_reco.recommenders ADD COLUMN dropped_source text;
ALTER TABLE media_reco.recommenders ADD CONSTRAINT recommenders_source_check
    CHECK ((source IS NULL) OPERATOR(pg_catalog.=) (dropped_source IS NOT NULL));
COMMENT ON COLUMN media_reco.recommenders.source IS
    'The interaction relation; NULL once it has been dropped (see dropped_source), so that a later relation reusing its OID is never read.';
COMMENT ON COLUMN media_reco.recommenders.dropped_source IS
    'The qualified name the source had when it was dropped (set by the event trigger media_reco_source_dropped), else NULL; refresh_neighbors then fails with 42P01 naming it.';

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
CREATE EVENT TRIGGER media_reco_source_dropped ON sql_drop
    EXECUTE FUNCTION media_reco.mark_dropped_sources();
COMMENT ON EVENT TRIGGER media_reco_source_dropped IS
    'Keeps media_reco.recommenders free of dangling source OIDs: a dropped source is marked, with its old name, by media_reco.mark_dropped_sources().';

-- feature_importance of a forest that made no split is an error, not zeros
COMMENT ON FUNCTION media_reco.feature_importance(text) IS
    'Impurity-based importance of each feature of a named forest (mean decrease in impurity, each tree normalised, summing to 1), most important first; an error (55000) when no tree made a split.';
