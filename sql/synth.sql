-- the synthetic catalogue and viewing log are reproducible and realistic
SELECT count(*), min(item_id), max(item_id), count(DISTINCT genre) AS genres,
       count(DISTINCT popularity_rank) AS ranks, min(popularity_rank), max(popularity_rank)
  FROM media_reco.synthetic_items(1000, 5);
SELECT genre, count(*) FROM media_reco.synthetic_items(1000, 5) GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 3;

-- same seed, same rows; another seed, other rows
SELECT (SELECT md5(string_agg(row(s.*)::text, ',')) FROM media_reco.synthetic_interactions(100, 50, 2000, 9) s) =
       (SELECT md5(string_agg(row(s.*)::text, ',')) FROM media_reco.synthetic_interactions(100, 50, 2000, 9) s) AS same_seed_same_rows,
       (SELECT md5(string_agg(row(s.*)::text, ',')) FROM media_reco.synthetic_interactions(100, 50, 2000, 9) s) <>
       (SELECT md5(string_agg(row(s.*)::text, ',')) FROM media_reco.synthetic_interactions(100, 50, 2000, 10) s) AS other_seed_other_rows;

CREATE TABLE syn AS SELECT * FROM media_reco.synthetic_interactions(2000, 500, 50000, 1);
SELECT count(*) AS rows, min(user_id) >= 1 AND max(user_id) <= 2000 AS users_in_range,
       min(item_id) >= 1 AND max(item_id) <= 500 AS items_in_range,
       min(rating) >= 1 AND max(rating) <= 5 AS ratings_1_to_5, min(plays) >= 1 AS plays_positive,
       min(watched_at) >= '2025-01-01 00:00+00' AND max(watched_at) < '2026-01-01 00:00+00' AS in_2025
  FROM syn;
-- popularity is heavy-tailed: the top 10% of items take a large share of views
SELECT sum(n) FILTER (WHERE r <= 50)::float8 / sum(n) > 0.35 AS top10pct_share_large
  FROM (SELECT item_id, count(*) n, rank() OVER (ORDER BY count(*) DESC, item_id) r FROM syn GROUP BY 1) x;
-- the most popular synthetic item is the one ranked 1 in the catalogue (or close to it)
SELECT (SELECT popularity_rank FROM media_reco.synthetic_items(500, 1) i
         WHERE i.item_id = (SELECT item_id FROM syn GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1)) <= 5 AS top_item_is_popular;
-- user activity is heavy-tailed too
SELECT max(n) > 5 * avg(n) AS heavy_users FROM (SELECT user_id, count(*) n FROM syn GROUP BY 1) x;
-- users are genre-loyal: most of a user's views fall in their top genre
SELECT avg(top_share) > 0.4 AS genre_loyal FROM (
  SELECT user_id, max(n)::float8 / sum(n) AS top_share
    FROM (SELECT s.user_id, i.genre, count(*) n FROM syn s JOIN media_reco.synthetic_items(500, 1) i USING (item_id)
           GROUP BY 1, 2) g
   GROUP BY 1 HAVING sum(n) >= 10) x;

-- bad sizes are errors
SELECT * FROM media_reco.synthetic_items(0);
SELECT * FROM media_reco.synthetic_items(20000000);
SELECT * FROM media_reco.synthetic_interactions(0, 10, 10);
SELECT * FROM media_reco.synthetic_interactions(10, 10, -1);
SELECT * FROM media_reco.synthetic_interactions(10, NULL, 10);
SELECT count(*) FROM media_reco.synthetic_interactions(10, 10, 0);
