-- time decay: each interaction weighs 0.5^(age / half_life), age from now()
SET client_min_messages = warning;
SET extra_float_digits = 0;

CREATE TABLE tv (user_id int, item_id int, w float8, ts timestamptz, epoch_s float8, label text);
-- one transaction: the inserts, the refresh and the reads share now(), so the ages are exact
BEGIN;
INSERT INTO tv (user_id, item_id, w, ts) VALUES
  (1, 1, 1, now()), (1, 2, 1, now() - interval '1 day'),
  (2, 1, 1, now() - interval '2 days'), (2, 3, 1, now()),
  (3, 2, 1, now()), (3, 3, 1, now() - interval '1 day'),
  (4, 1, 1, NULL);                                          -- no time: ignored with decay
UPDATE tv SET epoch_s = extract(epoch FROM ts);
SELECT media_reco.create_recommender('decay', 'tv', time_col => 'ts', half_life => '1 day');
SELECT interactions, users, items, pairs FROM media_reco.refresh_neighbors('decay');
-- decayed weights: item 1 = (u1: 1, u2: 0.25), item 2 = (u1: 0.5, u3: 1), item 3 = (u2: 1, u3: 0.5)
SELECT item_id, neighbor_id, round(similarity::numeric, 12) AS similarity, support, rank
  FROM media_reco.item_neighbors WHERE recommender = 'decay' ORDER BY 1, rank;
SELECT round((0.5 / (sqrt(1 + 0.0625) * sqrt(0.25 + 1)))::numeric, 12) AS cos_1_2,
       round((0.25 / (sqrt(1 + 0.0625) * sqrt(1 + 0.25)))::numeric, 12) AS cos_1_3,
       round((0.5 / (sqrt(0.25 + 1) * sqrt(1 + 0.25)))::numeric, 12) AS cos_2_3;
-- epoch seconds in a number column decay the same way
SELECT media_reco.create_recommender('decay_epoch', 'tv', time_col => 'epoch_s', half_life => '24 hours');
SELECT pairs FROM media_reco.refresh_neighbors('decay_epoch');
SELECT count(*) AS pairs,
       count(*) FILTER (WHERE b.similarity IS NULL OR abs(a.similarity - b.similarity) > 1e-9) AS differences
  FROM media_reco.item_neighbors a
  LEFT JOIN media_reco.item_neighbors b
    ON b.recommender = 'decay_epoch' AND b.item_id = a.item_id AND b.neighbor_id = a.neighbor_id
 WHERE a.recommender = 'decay';
-- recommend decays the live history from now(): user 1 = (item 1: 1, item 2: 0.5)
SELECT item_id, round(score::numeric, 12) AS score, rank FROM media_reco.recommend('decay', 1);
SELECT item_id, round(score::numeric, 12) AS score, rank FROM media_reco.recommend_for_items('decay', '{1,2}', '{1,0.5}');
COMMIT;

-- on generated data: a refresh equals item_similarity over the decayed weights written in SQL
CREATE TABLE gen_t AS SELECT * FROM media_reco.synthetic_interactions(300, 120, 5000, 17);
BEGIN;
UPDATE gen_t SET watched_at = now() - (watched_at - '2025-01-01'::timestamptz) / 4;  -- ages of 0 to ~90 days
CREATE VIEW gen_t_decayed AS
  SELECT user_id, item_id, plays * 0.5 ^ (extract(epoch FROM now() - watched_at) / (7 * 86400)) AS dw FROM gen_t;
SELECT media_reco.create_recommender('gen_decay', 'gen_t', weight_col => 'plays', k => 15,
                                     time_col => 'watched_at', half_life => '7 days');
SELECT pairs > 0 AS has_pairs FROM media_reco.refresh_neighbors('gen_decay');
SELECT count(*) AS rows,
       count(*) FILTER (WHERE n.similarity IS NULL OR abs(n.similarity - s.similarity) > 1e-9) AS differences
  FROM media_reco.item_similarity('gen_t_decayed', weight_col => 'dw', k => 15) s
  LEFT JOIN media_reco.item_neighbors n
    ON n.recommender = 'gen_decay' AND n.item_id = s.item_id AND n.rank = s.rank;
-- and recommend equals recommend_for_items with the decayed history weights written in SQL
SELECT count(DISTINCT u) AS users, count(*) > 300 AS many,
       count(*) FILTER (WHERE b.score IS NULL OR abs(a.score - b.score) > 1e-9) AS differences
  FROM generate_series(1, 300, 7) u,
       LATERAL media_reco.recommend('gen_decay', u, 10) a
  LEFT JOIN LATERAL media_reco.recommend_for_items('gen_decay',
                      (SELECT array_agg(item_id) FROM gen_t_decayed WHERE user_id = u),
                      (SELECT array_agg(dw) FROM gen_t_decayed WHERE user_id = u), 10) b
    ON b.rank = a.rank;
-- popular_items since a time (needs the time column)
SELECT * FROM media_reco.popular_items('gen_decay', 3, since => now() - interval '10 days');
SELECT count(*) AS differences FROM (
  SELECT item_id, users, rank FROM media_reco.popular_items('gen_decay', 5, since => now() - interval '10 days')
  EXCEPT
  SELECT item_id, users, rank FROM (
    SELECT item_id, count(DISTINCT user_id) AS users,
           row_number() OVER (ORDER BY count(DISTINCT user_id) DESC, item_id)::int AS rank
      FROM gen_t WHERE watched_at >= now() - interval '10 days' AND plays IS NOT NULL
     GROUP BY item_id) x WHERE rank <= 5) d;
COMMIT;

-- a timestamp without time zone is local time in the session's TimeZone, as in SQL's now() - t:
-- the refresh, recommend and popular_items(since) agree with the SQL written out in Tokyo time
SET TimeZone = 'Asia/Tokyo';
CREATE TABLE gen_ts AS SELECT user_id, item_id, plays, watched_at::timestamp AS watched_local FROM gen_t;
BEGIN;
CREATE VIEW gen_ts_decayed AS
  SELECT user_id, item_id, plays * 0.5 ^ (extract(epoch FROM now() - watched_local) / (7 * 86400)) AS dw FROM gen_ts;
SELECT media_reco.create_recommender('gen_ts', 'gen_ts', weight_col => 'plays', k => 15,
                                     time_col => 'watched_local', half_life => '7 days');
SELECT pairs > 0 AS has_pairs FROM media_reco.refresh_neighbors('gen_ts');
SELECT count(*) AS rows,
       count(*) FILTER (WHERE n.similarity IS NULL OR abs(n.similarity - s.similarity) > 1e-9) AS differences
  FROM media_reco.item_similarity('gen_ts_decayed', weight_col => 'dw', k => 15) s
  LEFT JOIN media_reco.item_neighbors n
    ON n.recommender = 'gen_ts' AND n.item_id = s.item_id AND n.rank = s.rank;
SELECT count(*) > 0 AS has_history, count(*) FILTER (WHERE abs(e.weight - d.dw) > 1e-12 * d.dw) AS history_weights_differ
  FROM media_reco.explain_recommendation('gen_ts', 5, (SELECT item_id FROM media_reco.recommend('gen_ts', 5, 1))) e
  JOIN (SELECT item_id, sum(dw) AS dw FROM gen_ts_decayed WHERE user_id = 5 GROUP BY 1) d
    ON d.item_id = e.because_item_id;
SELECT count(*) AS differences FROM (
  SELECT item_id, users FROM media_reco.popular_items('gen_ts', 5, since => now() - interval '10 days')
  EXCEPT
  SELECT item_id, users FROM (
    SELECT item_id, count(DISTINCT user_id) AS users,
           row_number() OVER (ORDER BY count(DISTINCT user_id) DESC, item_id) AS rank
      FROM gen_ts WHERE watched_local >= now() - interval '10 days' AND plays IS NOT NULL
     GROUP BY item_id) x WHERE rank <= 5) d;
COMMIT;
SELECT media_reco.drop_recommender('gen_ts');
RESET TimeZone;

-- popularity counts the rows a refresh reads: with a time column, a row without a time does not
-- count (item 30 has the most users, all without a time), in popular_items and in the fallback
CREATE TABLE pop_t (user_id int, item_id int, ts timestamptz);
INSERT INTO pop_t VALUES (1, 10, now()), (2, 10, now()), (1, 20, now()), (2, 20, now()), (3, 20, now()),
  (1, 30, NULL), (2, 30, NULL), (3, 30, NULL), (4, 30, NULL);
SELECT media_reco.create_recommender('pop_t', 'pop_t', time_col => 'ts', half_life => '1 day');
SELECT interactions, users, items FROM media_reco.refresh_neighbors('pop_t');
SELECT * FROM media_reco.popular_items('pop_t', 5);
SELECT item_id, count(DISTINCT user_id) AS users FROM pop_t WHERE ts IS NOT NULL GROUP BY 1 ORDER BY 2 DESC, 1;
-- user 4 has no history with a time: a cold start, filled from the popular items
SELECT item_id, rank, reason FROM media_reco.recommend('pop_t', 4, 5, fallback => 'popular');
SELECT media_reco.drop_recommender('pop_t');

-- the registry and the history keep the decay settings
SELECT name, time_col, half_life FROM media_reco.recommenders WHERE time_col IS NOT NULL ORDER BY name;
SELECT DISTINCT parameters ->> 'time_col' AS time_col, parameters ->> 'half_life' AS half_life
  FROM media_reco.refresh_history WHERE recommender = 'decay';

-- errors
\i test/sql/expect_error.sql
SELECT pg_temp.expect_error($$SELECT media_reco.create_recommender('x', 'tv', time_col => 'ts')$$);
SELECT pg_temp.expect_error($$SELECT media_reco.create_recommender('x', 'tv', half_life => '1 day')$$);
SELECT pg_temp.expect_error($$SELECT media_reco.create_recommender('x', 'tv', time_col => 'ts', half_life => '0')$$);
SELECT pg_temp.expect_error($$SELECT media_reco.create_recommender('x', 'tv', time_col => 'ts', half_life => '-1 day')$$);
-- positive as an interval comparison (a year is 12 x 30 days there) but -367200 s as
-- date_part('epoch') counts it, which is how the decay uses it: refused at creation
SELECT interval '-1 year 361 days' > interval '0' AS compares_positive,
       date_part('epoch', interval '-1 year 361 days') AS epoch_seconds;
SELECT pg_temp.expect_error($$SELECT media_reco.create_recommender('x', 'tv', time_col => 'ts', half_life => '-1 year 361 days')$$);
SELECT pg_temp.expect_error($$SELECT media_reco.create_recommender('x', 'tv', time_col => 'ts', half_life => '-1 year 366 days')$$) AS accepted_64800_seconds;
SELECT media_reco.drop_recommender('x');
SELECT pg_temp.expect_error($$SELECT media_reco.create_recommender('x', 'tv', time_col => 'label', half_life => '1 day')$$);
SELECT pg_temp.expect_error($$SELECT media_reco.create_recommender('x', 'tv', time_col => 'nope', half_life => '1 day')$$);
SELECT pg_temp.expect_error($$UPDATE media_reco.recommenders SET half_life = NULL WHERE name = 'decay'$$);
INSERT INTO tv (user_id, item_id, ts) VALUES (9, 1, 'infinity');
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.refresh_neighbors('decay')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.recommend('decay', 9)$$);
DELETE FROM tv WHERE ts = 'infinity';
-- a time far after now() doubles a weight every half-life: beyond double precision it is 22003 naming
-- the time column, in the refresh and in recommend alike; a zero weight stays 0 whatever its time
SET client_min_messages = warning;
CREATE TABLE tf AS SELECT * FROM tv;
INSERT INTO tf (user_id, item_id, w, ts) VALUES (9, 1, 0, now() + interval '60 days'), (9, 2, 1, now());
SELECT media_reco.create_recommender('future', 'tf', weight_col => 'w', time_col => 'ts', half_life => '1 hour');
SELECT interactions AS zero_weight_refreshed FROM media_reco.refresh_neighbors('future');
SELECT count(*) > 0 AS zero_weight_recommends FROM media_reco.recommend('future', 9);
UPDATE tf SET w = 1 WHERE user_id = 9;
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.refresh_neighbors('future')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.recommend('future', 9)$$);
SELECT media_reco.drop_recommender('future');
DROP TABLE tf;
RESET client_min_messages;
SELECT count(*) FROM media_reco.recommenders WHERE name = 'x';
SELECT media_reco.create_recommender('no_time', 'tv');
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.popular_items('no_time', 3, now())$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.popular_items('no_time', 0)$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.popular_items('nope')$$);
SELECT media_reco.drop_recommender('no_time');

-- clean up for the files that follow
SELECT media_reco.drop_recommender(name) FROM media_reco.recommenders
 WHERE name IN ('decay', 'decay_epoch', 'gen_decay') ORDER BY name;
DROP FUNCTION pg_temp.expect_error(text);
