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
