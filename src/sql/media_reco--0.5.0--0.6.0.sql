-- media_reco 0.5.0 -> 0.6.0 (the C library of 0.6.0 still serves a 0.5.0 schema, so
-- install it first).  Names qualified as in the install script (see its header).
-- Every object is left exactly as a fresh 0.6.0 install creates it
-- (test/t/007_upgrade.pl compares the catalogues).  0.6.0 adds citus_setup()
-- (section 17 of the install script); nothing existing changes.

\echo Use "ALTER EXTENSION media_reco UPDATE TO '0.6.0'" to load this file. \quit
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
