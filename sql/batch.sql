-- recommend_all: every user's recommend() in one set-wise pass
\i test/sql/expect_error.sql
CREATE SCHEMA batch_test;
SET search_path = batch_test, public;
SET client_min_messages = warning;

CREATE TABLE v AS SELECT user_id, item_id, plays, watched_at FROM media_reco.synthetic_interactions(500, 200, 12000, 3);
INSERT INTO v VALUES (1, 5, NULL, now()), (NULL, 5, 1, now()), (2, NULL, 1, now());   -- skipped as recommend skips them
CREATE INDEX ON v (user_id, item_id) INCLUDE (plays);
SELECT media_reco.create_recommender('b', 'v', weight_col => 'plays', k => 15);
SELECT media_reco.create_recommender('bd', 'v', weight_col => 'plays', k => 15, time_col => 'watched_at',
                                     half_life => '30 days');
SELECT media_reco.create_recommender('bj', 'v', metric => 'jaccard', k => 15);
SELECT count(*) AS refreshed FROM (SELECT media_reco.refresh_neighbors(n) FROM unnest(ARRAY['b', 'bd', 'bj']) n) s;

-- identical to calling recommend for each user: same rows, same scores (bit for bit), same ranks
SELECT n AS recommender, k,
       (SELECT count(*) FROM media_reco.recommend_all(n, k)) AS rows,
       NOT EXISTS (
         (SELECT user_id, item_id, score, rank FROM media_reco.recommend_all(n, k)
          EXCEPT ALL
          SELECT u.user_id, r.item_id, r.score, r.rank
            FROM (SELECT DISTINCT user_id FROM v WHERE user_id IS NOT NULL) u,
                 LATERAL media_reco.recommend(n, u.user_id, k) r)
         UNION ALL
         (SELECT u.user_id, r.item_id, r.score, r.rank
            FROM (SELECT DISTINCT user_id FROM v WHERE user_id IS NOT NULL) u,
                 LATERAL media_reco.recommend(n, u.user_id, k) r
          EXCEPT ALL
          SELECT user_id, item_id, score, rank FROM media_reco.recommend_all(n, k))) AS identical
FROM unnest(ARRAY['b', 'bj']) n, unnest(ARRAY[1, 10, 300]) k
ORDER BY 1, 2;
-- with time decay the weights of repeated views are not integers, and recommend sums them in another
-- order: the same items and ranks, scores equal to the last bits
SELECT k, count(*) FILTER (WHERE a.user_id IS NULL OR b.user_id IS NULL) AS missing,
       count(*) FILTER (WHERE a.rank <> b.rank) AS rank_differs,
       bool_and(abs(a.score - b.score) <= 1e-12 * abs(b.score)) AS scores_match
FROM unnest(ARRAY[1, 10, 300]) k,
     LATERAL (SELECT * FROM media_reco.recommend_all('bd', k)) a
     FULL JOIN LATERAL (SELECT u.user_id, r.item_id, r.score, r.rank
                          FROM (SELECT DISTINCT user_id FROM v WHERE user_id IS NOT NULL) u,
                               LATERAL media_reco.recommend('bd', u.user_id, k) r) b
       ON a.user_id = b.user_id AND a.item_id = b.item_id
GROUP BY k ORDER BY k;
-- the thread count does not change anything
SET media_reco.threads = 1;
CREATE TABLE one_thread AS SELECT * FROM media_reco.recommend_all('b', 10);
RESET media_reco.threads;
SELECT NOT EXISTS (SELECT * FROM one_thread EXCEPT ALL SELECT * FROM media_reco.recommend_all('b', 10)) AS same_with_threads;
-- rows come out by user, then rank
SELECT bool_and(ok) AS ordered FROM (
  SELECT (user_id, rank) > lag((user_id, rank)) OVER () OR lag(user_id) OVER () IS NULL AS ok
  FROM media_reco.recommend_all('b', 5)) s;

-- a set of users: unknown users and NULLs give nothing, duplicates count once
SELECT user_id, count(*) AS rows FROM media_reco.recommend_all('b', 3, ARRAY[7, 7, 3, NULL, -5]) GROUP BY 1 ORDER BY 1;
SELECT count(*) AS rows FROM media_reco.recommend_all('b', 3, '{}');

-- item ids anywhere in the bigint range: a stored neighbour far outside the source's id range
CREATE TABLE far (user_id int, item_id bigint);
INSERT INTO far SELECT u, -1000000000 + (u * 7 + j) % 20 FROM generate_series(1, 40) u, generate_series(1, 5) j;
INSERT INTO far SELECT u, 9223372036854775807 FROM generate_series(1, 30) u;
SELECT media_reco.create_recommender('far', 'far', k => 30);
SELECT interactions FROM media_reco.refresh_neighbors('far');
DELETE FROM far WHERE item_id = 9223372036854775807 AND user_id > 1;
SELECT NOT EXISTS (
         (SELECT user_id, item_id, score, rank FROM media_reco.recommend_all('far', 50)
          EXCEPT ALL
          SELECT u.user_id, r.item_id, r.score, r.rank FROM (SELECT DISTINCT user_id FROM far) u,
                 LATERAL media_reco.recommend('far', u.user_id, 50) r)
         UNION ALL
         (SELECT u.user_id, r.item_id, r.score, r.rank FROM (SELECT DISTINCT user_id FROM far) u,
                 LATERAL media_reco.recommend('far', u.user_id, 50) r
          EXCEPT ALL
          SELECT user_id, item_id, score, rank FROM media_reco.recommend_all('far', 50))) AS identical_far_ids,
       (SELECT count(*) FROM media_reco.recommend_all('far', 50) WHERE item_id = 9223372036854775807) AS huge_id_rows;

-- a time column whose type is a domain decays like its base type
CREATE DOMAIN ts_domain AS timestamptz;
CREATE TABLE vdom AS SELECT user_id, item_id, plays, watched_at::ts_domain AS watched_at FROM v;
SELECT media_reco.create_recommender('bdom', 'vdom', weight_col => 'plays', k => 15, time_col => 'watched_at',
                                     half_life => '30 days');
SELECT interactions > 0 AS refreshed FROM media_reco.refresh_neighbors('bdom');
SELECT bool_and(a.item_id = b.item_id AND abs(a.score - b.score) <= 1e-12 * abs(b.score)) AS domain_decays_alike,
       count(*) AS rows
FROM media_reco.recommend('bdom', 7, 10) a JOIN media_reco.recommend('bd', 7, 10) b USING (rank);

-- errors
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.recommend_all('nope')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.recommend_all('b', 0)$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.recommend_all('b', NULL)$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.recommend_all(NULL)$$);
SELECT media_reco.create_recommender('unrefreshed', 'v');
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.recommend_all('unrefreshed')$$);
SET maintenance_work_mem = '1MB';
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.recommend_all('b', 10000)$$);
RESET maintenance_work_mem;
-- a dropped source: 42P01 naming it (not "relation with OID 0"), for all users and for given
-- ones, the registry row and the neighbour lists of the last refresh left as they were
CREATE TABLE b_gone AS SELECT * FROM v WHERE user_id <= 60;
SELECT media_reco.create_recommender('b_gone', 'b_gone', weight_col => 'plays');
SELECT interactions > 0 AS refreshed FROM media_reco.refresh_neighbors('b_gone');
SELECT count(*) > 0 AS answers_before FROM media_reco.recommend_all('b_gone');
DROP TABLE b_gone;
CREATE TEMP TABLE b_gone_before AS
SELECT r.*, s.* FROM media_reco.recommenders r JOIN media_reco.neighbor_store s ON s.recommender_id = r.id
 WHERE r.name = 'b_gone';
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.recommend_all('b_gone')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.recommend_all('b_gone', 5, ARRAY[1, 2]::bigint[])$$);
SELECT count(*) AS lists,
       bool_and(source IS NULL AND dropped_source = 'batch_test.b_gone') AS marked,
       NOT EXISTS (SELECT r.*, s.* FROM media_reco.recommenders r
                     JOIN media_reco.neighbor_store s ON s.recommender_id = r.id WHERE r.name = 'b_gone'
                   EXCEPT SELECT * FROM b_gone_before)
       AND NOT EXISTS (SELECT * FROM b_gone_before
                       EXCEPT SELECT r.*, s.* FROM media_reco.recommenders r
                                JOIN media_reco.neighbor_store s ON s.recommender_id = r.id WHERE r.name = 'b_gone') AS intact
  FROM b_gone_before;
SELECT media_reco.drop_recommender('b_gone');
DROP TABLE b_gone_before;
SELECT media_reco.drop_recommender(n) FROM unnest(ARRAY['b', 'bd', 'bj', 'unrefreshed', 'far', 'bdom']) n;
