-- create_recommender / refresh_neighbors / drop_recommender and the neighbour table
SET client_min_messages = warning;
SET extra_float_digits = 0;

CREATE TABLE plays (user_id int, item_id int, n int, at timestamptz DEFAULT now());
INSERT INTO plays (user_id, item_id, n) VALUES
  (1, 1, 3), (1, 2, 1), (2, 1, 1), (2, 2, 2), (2, 3, 1), (3, 3, 4), (3, 1, 1), (4, 2, 1), (4, 4, 1);

SELECT media_reco.create_recommender('cf', 'plays', weight_col => 'n', k => 2);
SELECT name, source, user_col, item_col, weight_col, metric, k, min_support, shrinkage, refreshed_at IS NULL AS never_refreshed
  FROM media_reco.recommenders;
-- nothing materialized before the first refresh
SELECT count(*) FROM media_reco.item_neighbors WHERE recommender = 'cf';

SELECT interactions, users, items, pairs, seconds >= 0 AS timed FROM media_reco.refresh_neighbors('cf');
SELECT recommender, item_id, neighbor_id, round(similarity::numeric, 12) AS similarity, support, rank
  FROM media_reco.item_neighbors ORDER BY item_id, rank;

-- the materialized table is exactly what item_similarity computes
SELECT count(*) AS differences FROM (
  (SELECT item_id, neighbor_id, similarity, support, rank FROM media_reco.item_neighbors WHERE recommender = 'cf'
   EXCEPT SELECT * FROM media_reco.item_similarity('plays', weight_col => 'n', k => 2))
  UNION ALL
  (SELECT * FROM media_reco.item_similarity('plays', weight_col => 'n', k => 2)
   EXCEPT SELECT item_id, neighbor_id, similarity, support, rank FROM media_reco.item_neighbors WHERE recommender = 'cf')) d;

-- the run is recorded for the DBA
SELECT recommender, interactions, users, items, pairs, seconds >= read_seconds AS phases_ok,
       peak_memory_bytes > 0 AS has_peak, finished_at >= started_at AS ordered,
       parameters - 'threads' AS parameters
  FROM media_reco.refresh_history ORDER BY id;
SELECT refreshed_at IS NOT NULL AS refreshed, interactions, users, items, pairs
  FROM media_reco.recommenders WHERE name = 'cf';

-- new data shows up after the next refresh, and the old lists are replaced, not appended
INSERT INTO plays (user_id, item_id, n) VALUES (5, 4, 1), (5, 3, 1), (6, 4, 2), (6, 3, 2);
SELECT interactions, users, items, pairs FROM media_reco.refresh_neighbors('cf');
SELECT item_id, neighbor_id, round(similarity::numeric, 12) AS similarity, support, rank
  FROM media_reco.item_neighbors WHERE recommender = 'cf' ORDER BY item_id, rank;
SELECT count(*) AS history_rows FROM media_reco.refresh_history WHERE recommender = 'cf';

-- two recommenders over the same source are independent
SELECT media_reco.create_recommender('cf_jac', 'plays', metric => 'jaccard', k => 1, min_support => 2);
SELECT pairs FROM media_reco.refresh_neighbors('cf_jac');
SELECT recommender, item_id, neighbor_id, round(similarity::numeric, 12) AS similarity, support, rank
  FROM media_reco.item_neighbors ORDER BY recommender, item_id, rank;

-- a refresh inside a transaction that rolls back leaves the previous lists
BEGIN;
DELETE FROM plays;
SELECT interactions, pairs FROM media_reco.refresh_neighbors('cf');
SELECT count(*) AS inside_tx FROM media_reco.item_neighbors WHERE recommender = 'cf';
ROLLBACK;
SELECT count(*) AS after_rollback FROM media_reco.item_neighbors WHERE recommender = 'cf';

-- an empty source is a valid refresh: no neighbours
CREATE TABLE nothing (user_id int, item_id int);
SELECT media_reco.create_recommender('empty', 'nothing');
SELECT interactions, users, items, pairs FROM media_reco.refresh_neighbors('empty');
SELECT interactions, users, items, pairs FROM media_reco.recommenders WHERE name = 'empty';

-- a recommender over a view, with other column names
CREATE VIEW plays_v AS SELECT user_id AS viewer, item_id AS title FROM plays;
SELECT media_reco.create_recommender('cf_view', 'plays_v', 'viewer', 'title');
SELECT pairs FROM media_reco.refresh_neighbors('cf_view');

-- drop removes the registry row and the neighbour lists, keeps the history
SELECT media_reco.drop_recommender('cf_jac');
SELECT count(*) FROM media_reco.item_neighbors WHERE recommender = 'cf_jac';
SELECT count(*) FROM media_reco.neighbor_store s
 WHERE NOT EXISTS (SELECT 1 FROM media_reco.recommenders r WHERE r.id = s.recommender_id);
SELECT count(*) > 0 AS history_kept FROM media_reco.refresh_history WHERE recommender = 'cf_jac';
-- the name can be reused
SELECT media_reco.create_recommender('cf_jac', 'plays', metric => 'jaccard');
SELECT name FROM media_reco.recommenders ORDER BY name;

-- the neighbour table view works for BI-style filters
EXPLAIN (COSTS OFF) SELECT * FROM media_reco.item_neighbors WHERE recommender = 'cf' AND item_id = 1;

-- the extension's tables are dumped with user data
SELECT c.relname FROM pg_extension e, unnest(e.extconfig) AS t(oid) JOIN pg_class c ON c.oid = t.oid
 WHERE e.extname = 'media_reco' ORDER BY 1;

\i test/sql/expect_error.sql
SET client_min_messages = warning;
-- a source whose evaluation drops its own recommender (a view over a function
-- calling drop_recommender): the refresh fails and writes nothing, instead of
-- leaving neighbour rows without a registry row (the direct heap insert does
-- not check the foreign key)
CREATE FUNCTION selfdrop_rows() RETURNS TABLE(user_id int, item_id int) LANGUAGE plpgsql AS $$
BEGIN
  PERFORM media_reco.drop_recommender('selfdrop');
  RETURN QUERY SELECT p.user_id, p.item_id FROM plays p;
END $$;
CREATE VIEW selfdrop_v AS SELECT * FROM selfdrop_rows();
SELECT media_reco.create_recommender('selfdrop', 'selfdrop_v');
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.refresh_neighbors('selfdrop')$$);
-- ... or re-creates it under the same name (a new id), or changes its parameters
CREATE OR REPLACE FUNCTION selfdrop_rows() RETURNS TABLE(user_id int, item_id int) LANGUAGE plpgsql AS $$
BEGIN
  PERFORM media_reco.drop_recommender('selfdrop');
  PERFORM media_reco.create_recommender('selfdrop', 'plays');
  RETURN QUERY SELECT p.user_id, p.item_id FROM plays p;
END $$;
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.refresh_neighbors('selfdrop')$$);
CREATE OR REPLACE FUNCTION selfdrop_rows() RETURNS TABLE(user_id int, item_id int) LANGUAGE plpgsql AS $$
BEGIN
  UPDATE media_reco.recommenders SET k = 1 WHERE name = 'selfdrop';
  RETURN QUERY SELECT p.user_id, p.item_id FROM plays p;
END $$;
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.refresh_neighbors('selfdrop')$$);
-- brute force over the tables: no neighbour row without its registry row, the
-- recommender untouched (never refreshed, k as created)
SELECT count(*) AS orphan_rows FROM media_reco.neighbor_store s
 WHERE NOT EXISTS (SELECT 1 FROM media_reco.recommenders r WHERE r.id = s.recommender_id);
SELECT name, k, refreshed_at IS NULL AS never_refreshed,
       (SELECT count(*) FROM media_reco.neighbor_store s WHERE s.recommender_id = r.id) AS rows
  FROM media_reco.recommenders r WHERE name = 'selfdrop';
SELECT media_reco.drop_recommender('selfdrop');

-- no index on the source starts with the user column: create_recommender and
-- refresh_neighbors say so, with the exact statement (quoted identifiers,
-- schema-qualified table); an index leading with the user column silences it
CREATE SCHEMA "Idx Schema";
CREATE TABLE "Idx Schema".hist ("User Id" int, item int, w float8, at timestamptz);
INSERT INTO "Idx Schema".hist VALUES (1, 1, 1, now()), (1, 2, 'NaN', now());
CREATE INDEX ON "Idx Schema".hist (item, "User Id");                       -- wrong leading column
CREATE INDEX ON "Idx Schema".hist ("User Id") WHERE "User Id" > 100;      -- partial: serves some users only
SET client_min_messages = notice;
SELECT media_reco.create_recommender('idx_none', '"Idx Schema".hist', 'User Id', 'item', 'w');
SELECT media_reco.create_recommender('idx_decay', '"Idx Schema".hist', 'User Id', 'item', 'w',
                                     time_col => 'at', half_life => '1 day');
SELECT media_reco.create_recommender('idx_plain', '"Idx Schema".hist', 'User Id', 'item');
-- the refresh warns before it reads (the NaN weight then stops it, before its timing NOTICE)
SELECT * FROM media_reco.refresh_neighbors('idx_none');
CREATE INDEX ON "Idx Schema".hist ("User Id", item);
SELECT media_reco.create_recommender('idx_ok', '"Idx Schema".hist', 'User Id', 'item', 'w');
SELECT * FROM media_reco.refresh_neighbors('idx_none');
-- a view has no index of its own: nothing is said (its base table is the user's to index)
CREATE VIEW idx_view AS SELECT 1 AS user_id, 2 AS item_id;
SELECT media_reco.create_recommender('idx_view', 'idx_view');
SET client_min_messages = warning;
SELECT media_reco.drop_recommender(name) FROM media_reco.recommenders WHERE name LIKE 'idx\_%' ORDER BY name;
DROP SCHEMA "Idx Schema" CASCADE;

-- a dropped source: the sql_drop event trigger marks the recommender (source
-- NULL, the old name kept), so no dangling OID is left for a later relation to
-- reuse, and a refresh fails with 42P01 naming the old source
CREATE TABLE gone (user_id int, item_id int);
INSERT INTO gone VALUES (1, 1), (1, 2), (2, 1), (2, 2);
SELECT media_reco.create_recommender('orphaned', 'gone');
SELECT pairs FROM media_reco.refresh_neighbors('orphaned');
DROP TABLE gone;
SELECT source, dropped_source FROM media_reco.recommenders WHERE name = 'orphaned';
CREATE TABLE gone (user_id int, item_id int);     -- an unrelated table of the same name and shape
INSERT INTO gone VALUES (7, 8);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.refresh_neighbors('orphaned')$$);
-- the old lists stay, with their registry row
SELECT item_id, neighbor_id, rank FROM media_reco.item_neighbors WHERE recommender = 'orphaned' ORDER BY 1, 3;
-- brute force: no registry row names a relation that does not exist, no neighbour row lacks its registry row
SELECT count(*) AS dangling FROM media_reco.recommenders r
 WHERE r.source IS NOT NULL AND NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = r.source::oid);
SELECT count(*) AS orphan_rows FROM media_reco.neighbor_store s
 WHERE NOT EXISTS (SELECT 1 FROM media_reco.recommenders r WHERE r.id = s.recommender_id);
-- the marking is consistent: a source comes back only with its mark cleared
SELECT split_part(pg_temp.expect_error($$UPDATE media_reco.recommenders SET source = 'gone' WHERE name = 'orphaned'$$), ' (', 1);
UPDATE media_reco.recommenders SET source = 'gone', dropped_source = NULL WHERE name = 'orphaned';
SELECT pairs FROM media_reco.refresh_neighbors('orphaned');
SELECT media_reco.drop_recommender('orphaned');
-- a role with no rights on the registry drops its own source table: the
-- trigger runs as the extension's owner, so the drop works and is recorded;
-- dropping a column or an unrelated table changes nothing; a whole schema too
CREATE ROLE regress_mr_dropper;
CREATE SCHEMA regress_mr_dropper AUTHORIZATION regress_mr_dropper;
SET ROLE regress_mr_dropper;
CREATE TABLE regress_mr_dropper.mine (user_id int, item_id int, extra int);
CREATE TABLE regress_mr_dropper.other (x int);
RESET ROLE;
SELECT media_reco.create_recommender('theirs', 'regress_mr_dropper.mine');
SET ROLE regress_mr_dropper;
ALTER TABLE regress_mr_dropper.mine DROP COLUMN extra;
DROP TABLE regress_mr_dropper.other;
RESET ROLE;
SELECT source, dropped_source FROM media_reco.recommenders WHERE name = 'theirs';
SET ROLE regress_mr_dropper;
DROP TABLE regress_mr_dropper.mine;
RESET ROLE;
SELECT source, dropped_source FROM media_reco.recommenders WHERE name = 'theirs';
SELECT media_reco.drop_recommender('theirs');
SET ROLE regress_mr_dropper;
CREATE TABLE regress_mr_dropper.again (user_id int, item_id int);
RESET ROLE;
SELECT media_reco.create_recommender('theirs', 'regress_mr_dropper.again');
DROP SCHEMA regress_mr_dropper CASCADE;
SELECT source, dropped_source FROM media_reco.recommenders WHERE name = 'theirs';
SELECT media_reco.drop_recommender('theirs');
DROP ROLE regress_mr_dropper;
-- the event trigger function cannot be called directly
SELECT split_part(pg_temp.expect_error($$SELECT media_reco.mark_dropped_sources()$$), ' (', 1);

-- Storage: recommend() reads every history item's lists, so they stay inline
-- and uncompressed up to half a page.  A k = 200 list (over the default 2 kB
-- toast threshold) is neither compressed nor out of line; only supports,
-- which recommend() never reads, is compressed so two such rows share a page.
CREATE TABLE wide AS SELECT * FROM media_reco.synthetic_interactions(2000, 400, 60000, 8);
SELECT media_reco.create_recommender('wide', 'wide', k => 200);
SELECT pairs > 0 AS has_pairs FROM media_reco.refresh_neighbors('wide');
SELECT count(*) > 100 AS full_lists,
       count(*) FILTER (WHERE pg_column_compression(neighbor_ids) IS NOT NULL
                           OR pg_column_compression(similarities) IS NOT NULL) AS compressed,
       count(*) FILTER (WHERE pg_column_size(neighbor_ids) <> 24 + 8 * 200
                           OR pg_column_size(similarities) <> 24 + 8 * 200) AS not_inline,
       bool_and(pg_column_size(s.*) <= 4080) AS two_per_page
  FROM media_reco.neighbor_store s JOIN media_reco.recommenders r ON r.id = s.recommender_id
 WHERE r.name = 'wide' AND cardinality(neighbor_ids) = 200;
SELECT pg_relation_size(reltoastrelid) AS toast_bytes
  FROM pg_class WHERE oid = 'media_reco.neighbor_store'::regclass;
SELECT media_reco.drop_recommender('wide');
DROP TABLE wide;
