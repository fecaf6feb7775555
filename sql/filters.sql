-- recommend's filters (exclude, only), the popular fallback and the reason column
\i test/sql/expect_error.sql
CREATE SCHEMA filters_test;
SET search_path = filters_test, public;
SET client_min_messages = warning;

CREATE TABLE v AS SELECT user_id, item_id, plays FROM media_reco.synthetic_interactions(400, 150, 8000, 11);
CREATE INDEX ON v (user_id, item_id) INCLUDE (plays);
SELECT media_reco.create_recommender('f', 'v', weight_col => 'plays', k => 10);
SELECT interactions > 0 AS refreshed FROM media_reco.refresh_neighbors('f');

-- the full ranking of a user, to check the filters against
CREATE TABLE full_list AS SELECT item_id, score, rank FROM media_reco.recommend('f', 7, 10000);
SELECT count(*) > 20 AS enough_candidates FROM full_list;

-- exclude applies while scoring: still k rows, the next ones up
SELECT array_agg(item_id ORDER BY rank) =
       (SELECT array_agg(item_id ORDER BY rank) FROM (SELECT item_id, rank FROM full_list
         WHERE item_id NOT IN (SELECT item_id FROM full_list WHERE rank IN (1, 3)) ORDER BY rank LIMIT 5) s)
       AS exclude_is_filtered_ranking, count(*) AS rows
FROM media_reco.recommend('f', 7, 5,
       exclude => (SELECT array_agg(item_id) FROM full_list WHERE rank IN (1, 3)));
-- only: the allowed items, in their order in the full ranking, with their scores
SELECT array_agg(item_id ORDER BY rank) =
       (SELECT array_agg(item_id ORDER BY rank) FROM (SELECT item_id, rank FROM full_list WHERE item_id % 3 = 0
         ORDER BY rank LIMIT 5) s) AS only_is_filtered_ranking,
       bool_and(score = (SELECT score FROM full_list fl WHERE fl.item_id = r.item_id)) AS same_scores,
       bool_and(reason = 'neighbors') AS reasons
FROM media_reco.recommend('f', 7, 5, "only" => (SELECT array_agg(i) FROM generate_series(0, 150, 3) i)) r;
-- both at once, NULL elements ignored, an empty allowlist allows nothing
SELECT count(*) AS rows, bool_and(item_id % 2 = 0 AND item_id <> 10) AS filtered
FROM media_reco.recommend('f', 7, 5, exclude => ARRAY[10, NULL], "only" => (SELECT array_agg(i) FROM generate_series(0, 150, 2) i));
SELECT count(*) AS rows FROM media_reco.recommend('f', 7, 5, "only" => '{}');

-- the popular fallback: neighbours first, then the most popular unseen items passing the filters
CREATE TABLE pop AS SELECT item_id, users, rank FROM media_reco.popular_items('f', 10000);
CREATE TABLE seen7 AS SELECT DISTINCT item_id::bigint FROM v WHERE user_id = 7;
SELECT rank, reason, score IS NULL AS score_null FROM media_reco.recommend('f', 7, 4, "only" => '{1, 2, 3, 4, 5, 6, 7, 8}', fallback => 'popular')
ORDER BY rank;
SELECT array_agg(item_id ORDER BY rank) FILTER (WHERE reason = 'popular') =
       (SELECT array_agg(item_id ORDER BY rank) FROM (
          SELECT item_id, rank FROM pop
           WHERE item_id BETWEEN 1 AND 8 AND item_id NOT IN (SELECT item_id FROM seen7)
             AND item_id NOT IN (SELECT item_id FROM media_reco.recommend('f', 7, 4, "only" => '{1, 2, 3, 4, 5, 6, 7, 8}'))
           ORDER BY rank LIMIT 4 - (SELECT count(*) FROM media_reco.recommend('f', 7, 4, "only" => '{1, 2, 3, 4, 5, 6, 7, 8}'))) s)
       AS popular_part_matches
FROM media_reco.recommend('f', 7, 4, "only" => '{1, 2, 3, 4, 5, 6, 7, 8}', fallback => 'popular');
-- a user with no history (cold start) gets the most popular items; without fallback, nothing
SELECT array_agg(item_id ORDER BY rank) = (SELECT array_agg(item_id ORDER BY rank) FROM pop WHERE rank <= 5) AS cold_start_popular,
       bool_and(reason = 'popular') AS reasons, count(*) AS rows
FROM media_reco.recommend('f', -1, 5, fallback => 'popular');
SELECT count(*) AS no_fallback_rows FROM media_reco.recommend('f', -1, 5);
-- the blocklist applies to the fallback too, and popular items are never the user's own
SELECT bool_and(item_id NOT IN (SELECT item_id FROM seen7)) AS never_seen, count(*) AS rows
FROM media_reco.recommend('f', 7, 150, exclude_seen => false, fallback => 'popular')
WHERE reason = 'popular';
SELECT count(*) = 0 AS blocked FROM media_reco.recommend('f', -1, 5, exclude => (SELECT array_agg(item_id) FROM pop WHERE rank <= 3), fallback => 'popular')
WHERE item_id IN (SELECT item_id FROM pop WHERE rank <= 3);
-- always k rows when the catalogue allows: k = 10000 stops at what exists
SELECT count(*) = (SELECT count(DISTINCT item_id) FROM v WHERE item_id NOT IN (SELECT item_id FROM seen7)) AS everything_unseen
FROM media_reco.recommend('f', 7, 10000, fallback => 'popular');
SELECT count(DISTINCT item_id) = count(*) AS no_duplicates
FROM media_reco.recommend('f', 7, 10000, fallback => 'popular');

-- errors
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.recommend('f', 7, fallback => 'random')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.recommend('f', 7, fallback => NULL)$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.recommend('f', 7, exclude_seen => NULL)$$);
SELECT media_reco.drop_recommender('f');
