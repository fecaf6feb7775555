-- every user-caused error: a clear message, a specific SQLSTATE, nothing changed
\i test/sql/expect_error.sql
SET client_min_messages = warning;

CREATE TABLE ev (user_id int, item_id bigint, w float8, label text, score real, flag bool);
INSERT INTO ev VALUES (1, 1, 1, 'a', 1, true), (1, 2, 2, 'b', 1, false), (2, 1, 1, 'c', 1, true);
CREATE TABLE victim (x int);
CREATE INDEX ev_idx ON ev (user_id);
CREATE SEQUENCE ev_seq;

-- item_similarity: arguments
SELECT * FROM media_reco.item_similarity(NULL);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.item_similarity('ev', NULL)$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.item_similarity('ev', item_col => NULL)$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.item_similarity('ev', metric => NULL)$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.item_similarity('ev', k => NULL)$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.item_similarity('ev', min_support => NULL)$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.item_similarity('ev', shrinkage => NULL)$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.item_similarity('ev', metric => 'euclid')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.item_similarity('ev', k => 0)$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.item_similarity('ev', k => 10001)$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.item_similarity('ev', min_support => 0)$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.item_similarity('ev', shrinkage => -1)$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.item_similarity('ev', shrinkage => 'NaN')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.item_similarity('ev', shrinkage => 'Infinity')$$);

-- item_similarity: the source and its columns
SELECT * FROM media_reco.item_similarity('no_such_table');
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.item_similarity('ev_idx')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.item_similarity('ev_seq')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.item_similarity('ev', 'nope')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.item_similarity('ev', 'user_id', 'nope')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.item_similarity('ev', weight_col => 'nope')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.item_similarity('ev', 'label')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.item_similarity('ev', 'user_id', 'score')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.item_similarity('ev', weight_col => 'label')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.item_similarity('ev', weight_col => 'flag')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.item_similarity('ev', weight_col => 'ctid')$$);
-- a column "name" is an identifier, never SQL text
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.item_similarity('ev', 'user_id; DROP TABLE victim; --')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.item_similarity('ev', weight_col => 'w) FROM victim; --')$$);
SELECT count(*) AS victim_still_there FROM victim;

-- item_similarity: bad data
INSERT INTO ev (user_id, item_id, w) VALUES (3, 3, 'NaN');
SELECT * FROM media_reco.item_similarity('ev', weight_col => 'w');
UPDATE ev SET w = '-Infinity' WHERE user_id = 3;
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.item_similarity('ev', weight_col => 'w')$$);
-- without the weight column the same rows are fine
SELECT count(*) FROM media_reco.item_similarity('ev');
DELETE FROM ev WHERE user_id = 3;
CREATE TABLE huge_w (user_id int, item_id int, w float8);
INSERT INTO huge_w VALUES (1, 1, 1e308), (1, 1, 1e308), (1, 2, 1);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.item_similarity('huge_w', weight_col => 'w')$$);
CREATE TABLE num_w (user_id int, item_id int, w numeric);
INSERT INTO num_w VALUES (1, 1, 1), (1, 2, 'NaN');
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.item_similarity('num_w', weight_col => 'w')$$);
-- a materialized view that was never populated
CREATE MATERIALIZED VIEW ev_mv AS SELECT * FROM ev WITH NO DATA;
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.item_similarity('ev_mv')$$);

-- memory budget: a clear error with a hint, not an out-of-memory kill
CREATE TABLE wide AS SELECT u AS user_id, i AS item_id FROM generate_series(1, 300) u, generate_series(1, 300) i;
SET maintenance_work_mem = '1MB';
SELECT count(*) FROM media_reco.item_similarity('wide');
SELECT pg_temp.expect_error($$SELECT count(*) FROM media_reco.item_similarity('wide')$$);
RESET maintenance_work_mem;
SELECT count(*) FROM media_reco.item_similarity('wide', k => 1);

-- permissions: the caller's privileges apply (SECURITY INVOKER)
CREATE ROLE regress_media_reco_nobody;
GRANT USAGE ON SCHEMA media_reco TO regress_media_reco_nobody;
SET ROLE regress_media_reco_nobody;
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.item_similarity('ev')$$);
SELECT pg_temp.expect_error($$SELECT media_reco.create_recommender('sneaky', 'ev')$$);
RESET ROLE;
GRANT SELECT (user_id, item_id) ON ev TO regress_media_reco_nobody;
SET ROLE regress_media_reco_nobody;
-- column privileges are enough to read; the registry stays closed to this role
SELECT count(*) FROM media_reco.item_similarity('ev');
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.item_similarity('ev', weight_col => 'w')$$);
SELECT pg_temp.expect_error($$SELECT media_reco.create_recommender('sneaky', 'ev')$$);
RESET ROLE;

-- create_recommender: validated at once, nothing registered on error
SELECT media_reco.create_recommender('good', 'ev', weight_col => 'w');
SELECT pg_temp.expect_error($$SELECT media_reco.create_recommender('good', 'ev')$$);
SELECT pg_temp.expect_error($$SELECT media_reco.create_recommender('', 'ev')$$);
SELECT pg_temp.expect_error($$SELECT media_reco.create_recommender(NULL, 'ev')$$);
SELECT pg_temp.expect_error($$SELECT media_reco.create_recommender('x', NULL)$$);
SELECT pg_temp.expect_error($$SELECT media_reco.create_recommender('x', 'ev', 'nope')$$);
SELECT pg_temp.expect_error($$SELECT media_reco.create_recommender('x', 'ev', 'label')$$);
SELECT pg_temp.expect_error($$SELECT media_reco.create_recommender('x', 'ev', weight_col => 'label')$$);
SELECT pg_temp.expect_error($$SELECT media_reco.create_recommender('x', 'ev', metric => 'pearsons')$$);
SELECT pg_temp.expect_error($$SELECT media_reco.create_recommender('x', 'ev', k => 0)$$);
SELECT pg_temp.expect_error($$SELECT media_reco.create_recommender('x', 'ev', k => 20000)$$);
SELECT pg_temp.expect_error($$SELECT media_reco.create_recommender('x', 'ev', min_support => -5)$$);
SELECT pg_temp.expect_error($$SELECT media_reco.create_recommender('x', 'ev', shrinkage => '-Infinity')$$);
SELECT pg_temp.expect_error($$SELECT media_reco.create_recommender('x', 'ev_idx')$$);
SELECT name FROM media_reco.recommenders ORDER BY name;

-- unknown recommender names
SELECT * FROM media_reco.refresh_neighbors('nope');
SELECT pg_temp.expect_error($$SELECT media_reco.drop_recommender('nope')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.refresh_neighbors('nope')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.recommend('nope', 1)$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.similar_items('nope', 1)$$);
SELECT pg_temp.expect_error($$SELECT media_reco.drop_recommender(NULL)$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.refresh_neighbors(NULL)$$);

-- reading before the first refresh
SELECT * FROM media_reco.recommend('good', 1);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.similar_items('good', 1)$$);
SELECT pairs FROM media_reco.refresh_neighbors('good');

-- the read path checks the caller's privileges on the neighbour table too
GRANT SELECT ON media_reco.recommenders TO regress_media_reco_nobody;
SET ROLE regress_media_reco_nobody;
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.similar_items('good', 1)$$);
RESET ROLE;
-- column-level grants on the four columns read are enough
GRANT SELECT (recommender_id, item_id, neighbor_ids, similarities) ON media_reco.neighbor_store TO regress_media_reco_nobody;
SET ROLE regress_media_reco_nobody;
SELECT count(*) FROM media_reco.similar_items('good', 1);
RESET ROLE;
DROP OWNED BY regress_media_reco_nobody;
DROP ROLE regress_media_reco_nobody;

-- refresh writes the neighbour table directly: it checks what INSERT would, and refuses row-level
-- security it cannot apply (a role that may refresh; RLS bypassed by superusers, so not by this one)
CREATE ROLE regress_media_reco_writer;
GRANT USAGE ON SCHEMA media_reco TO regress_media_reco_writer;
GRANT SELECT, UPDATE ON media_reco.recommenders TO regress_media_reco_writer;
GRANT SELECT, INSERT, DELETE ON media_reco.neighbor_store TO regress_media_reco_writer;
GRANT INSERT ON media_reco.refresh_history TO regress_media_reco_writer;
GRANT SELECT ON ev TO regress_media_reco_writer;
SET ROLE regress_media_reco_writer;
SELECT pairs FROM media_reco.refresh_neighbors('good');
RESET ROLE;
ALTER TABLE media_reco.neighbor_store ENABLE ROW LEVEL SECURITY;
-- any policy at all is refused, even one that lets every row through: the direct write applies none
CREATE POLICY regress_see_all ON media_reco.neighbor_store FOR ALL USING (true);
SET ROLE regress_media_reco_writer;
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.refresh_neighbors('good')$$);
RESET ROLE;
DROP POLICY regress_see_all ON media_reco.neighbor_store;
ALTER TABLE media_reco.neighbor_store DISABLE ROW LEVEL SECURITY;
SELECT count(*) > 0 AS lists_kept FROM media_reco.neighbor_store s JOIN media_reco.recommenders r
    ON r.id = s.recommender_id WHERE r.name = 'good';
DROP OWNED BY regress_media_reco_writer;
DROP ROLE regress_media_reco_writer;

-- recommend / similar_items arguments
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.recommend('good', NULL)$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.recommend(NULL, 1)$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.recommend('good', 1, 0)$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.recommend('good', 1, 10001)$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.recommend('good', 1, NULL)$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.recommend('good', 1, 10, NULL)$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.similar_items('good', NULL)$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.similar_items('good', 1, 0)$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.similar_items('good', 1, 10001)$$);

-- a user's live history whose summed weight overflows
INSERT INTO ev (user_id, item_id, w) VALUES (5, 1, 1e308), (5, 1, 1e308);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.recommend('good', 5)$$);
DELETE FROM ev WHERE user_id = 5;

-- a score out of range only matters for an item that can be recommended: the seen and excluded
-- items' scores are skipped first, as recommend_all does; the error names the smallest such item
CREATE TABLE ov (user_id int, item_id int, w float8);
INSERT INTO ov VALUES (2, 1, 1), (2, 2, 1), (2, 3, 1), (3, 1, 1), (3, 2, 1), (3, 3, 1), (5, 3, 1), (5, 4, 1),
  (1, 1, 1), (1, 2, 1), (1, 3, 1);
SELECT media_reco.create_recommender('ov', 'ov', weight_col => 'w');
SELECT pairs FROM media_reco.refresh_neighbors('ov');
UPDATE ov SET w = 1.5e308 WHERE user_id = 1;
SELECT item_id, rank FROM media_reco.recommend('ov', 1, 5);
SELECT item_id, rank FROM media_reco.recommend_all('ov', 5, '{1}');
SELECT item_id, rank FROM media_reco.recommend('ov', 1, 5, exclude_seen => false, exclude => '{1, 2, 3}');
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.recommend('ov', 1, 5, exclude_seen => false)$$);
SELECT media_reco.drop_recommender('ov');
DROP TABLE ov;

-- the registry is guarded: parameters a user could UPDATE in are refused
SELECT pg_temp.expect_error($$UPDATE media_reco.recommenders SET shrinkage = -1 WHERE name = 'good'$$);
SELECT pg_temp.expect_error($$UPDATE media_reco.recommenders SET k = 0 WHERE name = 'good'$$);
SELECT pg_temp.expect_error($$UPDATE media_reco.recommenders SET metric = 'euclid' WHERE name = 'good'$$);

-- recommend_for_items / explain_recommendation arguments
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.recommend_for_items('good', NULL)$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.recommend_for_items('good', '{1,2}', '{1}')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.recommend_for_items('good', '{1,2}', '{1,NaN}')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.recommend_for_items('good', '{1,1}', '{1e308,1e308}')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.recommend_for_items('good', '{1}', k => 0)$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.recommend_for_items('nope', '{1}')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.explain_recommendation('good', 1, NULL)$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.explain_recommendation('nope', 1, 1)$$);

-- a NaN weight in a user's live history
INSERT INTO ev (user_id, item_id, w) VALUES (5, 1, 'NaN');
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.recommend('good', 5)$$);
-- other users are unaffected
SELECT count(*) FROM media_reco.recommend('good', 2);
DELETE FROM ev WHERE user_id = 5;

-- a failed refresh keeps the old neighbours
SELECT count(*) AS before FROM media_reco.item_neighbors WHERE recommender = 'good';
INSERT INTO ev (user_id, item_id, w) VALUES (6, 1, 'Infinity');
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.refresh_neighbors('good')$$);
SELECT count(*) AS after FROM media_reco.item_neighbors WHERE recommender = 'good';
DELETE FROM ev WHERE user_id = 6;

-- the source changes under a recommender
ALTER TABLE ev RENAME COLUMN w TO weight;
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.refresh_neighbors('good')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.recommend('good', 1)$$);
ALTER TABLE ev RENAME COLUMN weight TO w;
-- a dropped source: every function that reads the source fails with 42P01 naming the dropped
-- table (not "relation with OID 0"), also when a new table of that name has taken its place, and
-- leaves the registry row and the stored lists as they were
CREATE TABLE doomed (user_id int, item_id int);
INSERT INTO doomed VALUES (1, 1), (1, 2), (2, 1), (2, 3);
SELECT media_reco.create_recommender('doomed', 'doomed');
SELECT pairs FROM media_reco.refresh_neighbors('doomed');
DROP TABLE doomed;
CREATE TEMP TABLE doomed_before AS
SELECT r.id, r.source, r.dropped_source, r.refreshed_at, s.item_id, s.neighbor_ids, s.similarities
  FROM media_reco.recommenders r JOIN media_reco.neighbor_store s ON s.recommender_id = r.id
 WHERE r.name = 'doomed';
CREATE TABLE doomed (user_id int, item_id int);   -- an unrelated table of the same name and shape
INSERT INTO doomed VALUES (1, 7), (3, 7);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.refresh_neighbors('doomed')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.recommend('doomed', 1)$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.recommend('doomed', 3, fallback => 'popular')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.explain_recommendation('doomed', 1, 3)$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.popular_items('doomed')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.popular_items('doomed', 5, now())$$);
DROP TABLE doomed;
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.recommend('doomed', 1)$$) AS without_a_namesake;
-- the registry row (source NULL, the old name kept) and every stored list are unchanged
SELECT count(*) AS lists,
       bool_and(source IS NULL AND dropped_source = 'public.doomed') AS marked,
       NOT EXISTS (SELECT r.id, r.source, r.dropped_source, r.refreshed_at, s.item_id, s.neighbor_ids, s.similarities
                     FROM media_reco.recommenders r JOIN media_reco.neighbor_store s ON s.recommender_id = r.id
                    WHERE r.name = 'doomed'
                   EXCEPT SELECT * FROM doomed_before)
       AND NOT EXISTS (SELECT * FROM doomed_before
                       EXCEPT SELECT r.id, r.source, r.dropped_source, r.refreshed_at, s.item_id, s.neighbor_ids, s.similarities
                                FROM media_reco.recommenders r JOIN media_reco.neighbor_store s ON s.recommender_id = r.id
                               WHERE r.name = 'doomed') AS intact
  FROM doomed_before;
-- what reads only the stored lists still answers: items 2 and 3 are item 1's neighbours
-- (cosine 1/sqrt(2) each), and a session of item 1 scores them alike
SELECT neighbor_id, round(similarity::numeric, 12) AS similarity, rank FROM media_reco.similar_items('doomed', 1);
SELECT item_id, round(score::numeric, 12) AS score, rank FROM media_reco.recommend_for_items('doomed', ARRAY[1]::bigint[]);
SELECT round(1 / sqrt(2)::numeric, 12) AS expected_similarity;
-- and it can be dropped
SELECT media_reco.drop_recommender('doomed');
DROP TABLE doomed_before;

-- refresh needs a read-write transaction
BEGIN TRANSACTION READ ONLY;
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.refresh_neighbors('good')$$);
ROLLBACK;

-- a settings typo under the reserved prefix is refused
SET media_reco.thread = 2;
SET media_reco.threads = 0;
SET media_reco.threads = 65;
