-- the evaluation loop: split_interactions and evaluate
\i test/sql/expect_error.sql
CREATE SCHEMA evaluate_test;
SET search_path = evaluate_test, public;
SET client_min_messages = warning;   -- refresh NOTICEs carry timings

CREATE TABLE log AS
SELECT user_id, item_id, plays, watched_at
FROM media_reco.synthetic_interactions(300, 120, 6000, 5);
SELECT count(*) AS rows FROM log;

-- random: complete, disjoint as a multiset, about the fraction, the same for the same seed
SELECT * FROM media_reco.split_interactions('log', 'tr1', 'te1', test_fraction => 0.25, seed => 7);
SELECT * FROM media_reco.split_interactions('log', 'tr2', 'te2', test_fraction => 0.25, seed => 7);
SELECT * FROM media_reco.split_interactions('log', 'tr3', 'te3', test_fraction => 0.25, seed => 8);
SELECT (SELECT count(*) FROM (SELECT * FROM tr1 UNION ALL SELECT * FROM te1) u) = (SELECT count(*) FROM log) AS complete,
       NOT EXISTS (SELECT * FROM log EXCEPT ALL (SELECT * FROM tr1 UNION ALL SELECT * FROM te1)) AS nothing_lost,
       (SELECT count(*) FROM te1)::float8 / (SELECT count(*) FROM log) BETWEEN 0.22 AND 0.28 AS about_a_quarter,
       NOT EXISTS (SELECT * FROM te1 EXCEPT ALL SELECT * FROM te2)
         AND NOT EXISTS (SELECT * FROM te2 EXCEPT ALL SELECT * FROM te1) AS same_seed_same_split,
       EXISTS (SELECT * FROM te1 EXCEPT ALL SELECT * FROM te3) AS other_seed_other_split;
SELECT attname FROM pg_attribute WHERE attrelid = 'te1'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum;

-- temporal: each user's latest floor(0.2 n) timed rows, NULL times stay in training
INSERT INTO log SELECT user_id, item_id, plays, NULL FROM log WHERE user_id = 1 LIMIT 3;
SELECT * FROM media_reco.split_interactions('log', 'trt', 'tet', 'temporal', 0.2, time_col => 'watched_at');
SELECT bool_and(c.test = floor(c.timed * 0.2)) AS counts_per_user,
       bool_and(c.newest_train IS NULL OR c.oldest_test IS NULL OR c.newest_train <= c.oldest_test) AS latest_are_test
FROM (SELECT u.user_id,
             (SELECT count(watched_at) FROM log l WHERE l.user_id = u.user_id) AS timed,
             (SELECT count(*) FROM tet t WHERE t.user_id = u.user_id) AS test,
             (SELECT max(watched_at) FROM trt t WHERE t.user_id = u.user_id) AS newest_train,
             (SELECT min(watched_at) FROM tet t WHERE t.user_id = u.user_id) AS oldest_test
      FROM (SELECT DISTINCT user_id FROM log) u) c;
SELECT count(*) AS null_times_in_test FROM tet WHERE watched_at IS NULL;
DELETE FROM log WHERE watched_at IS NULL;

-- an unqualified target name is created in the first schema of search_path and every later step
-- works on that table, not on a temp table of the same name (pg_temp is searched first)
CREATE TEMP TABLE trq (keep_me int);
SELECT * FROM media_reco.split_interactions('log', 'trq', 'teq', test_fraction => 0.25, seed => 7);
SELECT attname FROM pg_attribute WHERE attrelid = 'pg_temp.trq'::regclass AND attnum > 0 AND NOT attisdropped;
SELECT (SELECT count(*) FROM evaluate_test.trq) + (SELECT count(*) FROM evaluate_test.teq) = (SELECT count(*) FROM log) AS complete,
       (SELECT count(*) FROM evaluate_test.trq) = (SELECT count(*) FROM tr1) AS same_as_tr1;
SELECT attname FROM pg_attribute WHERE attrelid = 'evaluate_test.trq'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum;
DROP TABLE pg_temp.trq, evaluate_test.trq, evaluate_test.teq;

-- evaluate: against the same metrics computed call by call in plain SQL
CREATE INDEX ON tr1 (user_id, item_id) INCLUDE (plays);
SELECT media_reco.create_recommender('ev', 'tr1', weight_col => 'plays', k => 20);
SELECT interactions > 0 AS refreshed FROM media_reco.refresh_neighbors('ev');
CREATE TABLE got AS SELECT * FROM media_reco.evaluate('ev', 'te1', 5);
SELECT metric FROM got ORDER BY metric;
CREATE TABLE want AS
WITH seen AS (SELECT DISTINCT user_id::int8 AS u, item_id::int8 AS i FROM tr1 WHERE plays IS NOT NULL),
rel AS (SELECT t.user_id::int8 AS u, array_agg(DISTINCT t.item_id::int8) AS items FROM te1 t
        WHERE NOT EXISTS (SELECT 1 FROM seen s WHERE s.u = t.user_id AND s.i = t.item_id) GROUP BY 1),
pop AS (SELECT item_id, rank FROM media_reco.popular_items('ev', 10000)),
lists AS (
  SELECT 'model' AS who, r.items AS rel,
         coalesce((SELECT array_agg(item_id ORDER BY rank) FROM media_reco.recommend('ev', r.u, 5)), '{}') AS items
  FROM rel r
  UNION ALL
  SELECT 'popular', r.items,
         coalesce((SELECT array_agg(item_id ORDER BY rank) FROM
                     (SELECT item_id, rank FROM pop WHERE NOT EXISTS (SELECT 1 FROM seen s WHERE s.u = r.u AND s.i = pop.item_id)
                      ORDER BY rank LIMIT 5) p), '{}')
  FROM rel r)
SELECT who, avg(media_reco.precision_at_k(items, rel, 5)) AS p, avg(media_reco.recall_at_k(items, rel, 5)) AS r,
       avg(media_reco.ndcg_at_k(items, rel, 5)) AS n, avg(media_reco.average_precision_at_k(items, rel, 5)) AS ap,
       avg(media_reco.hit_at_k(items, rel, 5)) AS h, avg(media_reco.reciprocal_rank(items, rel)) AS rr,
       (SELECT count(DISTINCT x) FROM lists l2, unnest(l2.items) x WHERE l2.who = l.who)::float8
         / (SELECT count(DISTINCT item_id) FROM tr1) AS cov,
       count(*)::float8 AS users
FROM lists l GROUP BY who;
SELECT w.who, bool_and(abs(g.value - v.val) < 1e-12) AS matches, count(*) AS metrics
FROM want w
     CROSS JOIN LATERAL (VALUES ('precision@5', w.p), ('recall@5', w.r), ('ndcg@5', w.n), ('map@5', w.ap),
                     ('hit_rate@5', w.h), ('mrr', w.rr), ('coverage', w.cov), ('users', w.users)) v(metric, val),
     got g
WHERE g.metric = CASE WHEN w.who = 'popular' THEN 'popular_' || v.metric ELSE v.metric END
GROUP BY w.who ORDER BY w.who;
-- the recommender beats popularity on its own held-out rows
SELECT (SELECT value FROM got WHERE metric = 'ndcg@5') > (SELECT value FROM got WHERE metric = 'popular_ndcg@5')
       AS beats_popularity;

-- a tiny case by hand: u1 saw 1, 2 and holds out 3; u2 saw 1 and holds out 2 and 1 (1 is seen, so only 2 counts)
CREATE TABLE tiny_train (user_id int, item_id int);
INSERT INTO tiny_train VALUES (1, 1), (1, 2), (2, 1), (3, 2), (3, 3), (4, 1), (4, 3);
CREATE TABLE tiny_test (user_id int, item_id int);
INSERT INTO tiny_test VALUES (1, 3), (2, 2), (2, 1), (9, NULL);
SELECT media_reco.create_recommender('tiny', 'tiny_train');
SELECT interactions FROM media_reco.refresh_neighbors('tiny');
SELECT * FROM media_reco.recommend('tiny', 1, 1);
SELECT * FROM media_reco.recommend('tiny', 2, 1);
SELECT metric, round(value::numeric, 6) AS value FROM media_reco.evaluate('tiny', 'tiny_test', 1);

-- a user table with evaluate's scratch name, first on the search_path, is neither read nor dropped
CREATE TABLE public.media_reco_eval_seen (u int8, i int8);
INSERT INTO public.media_reco_eval_seen VALUES (1, 1);
SET search_path = public, evaluate_test, pg_temp;
SELECT metric, round(value::numeric, 6) AS value FROM media_reco.evaluate('tiny', 'tiny_test', 1)
WHERE metric IN ('precision@1', 'popular_precision@1', 'popular_coverage');
SELECT count(*) AS user_table_kept FROM public.media_reco_eval_seen;
DROP TABLE public.media_reco_eval_seen;
SET search_path = evaluate_test, public;

-- errors
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.split_interactions('log', 'a', 'b', 'stratified')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.split_interactions('log', 'a', 'b', test_fraction => 0)$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.split_interactions('log', 'a', 'b', test_fraction => 1)$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.split_interactions('log', 'a', 'b', 'temporal')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.split_interactions('log', 'a', 'b', time_col => 'watched_at')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.split_interactions('log', 'a', 'b', 'temporal', time_col => 'nope')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.split_interactions('log', 'a', 'b', 'temporal', time_col => 'watched_at', user_col => 'nope')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.split_interactions('log', 'a', 'a')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.split_interactions('log', 'tr1', 'b')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.split_interactions('log', 'x.y.z.w', 'b')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.split_interactions('log', 'a"; DROP TABLE log; --', 'b')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.split_interactions('log', NULL, 'b')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.split_interactions('log', 'no_such_schema.a', 'b')$$);
SELECT count(*) AS log_still_there FROM log;
SELECT to_regclass('a') IS NULL AND to_regclass('b') IS NULL AS nothing_created;
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.evaluate('nope', 'te1')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.evaluate('ev', 'te1', 0)$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.evaluate('ev', NULL)$$);
CREATE TABLE other_cols (u int, i int);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.evaluate('ev', 'other_cols')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.evaluate('ev', 'tr1')$$);
SELECT media_reco.create_recommender('fresh', 'tr1');
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.evaluate('fresh', 'te1')$$);
-- a dropped training source: 42P01 naming it (not "relation with OID 0"), the registry row and
-- the neighbour lists of the last refresh left as they were, and no scratch table left behind
CREATE TABLE ev_gone AS SELECT * FROM tr1;
SELECT media_reco.create_recommender('ev_gone', 'ev_gone', weight_col => 'plays', k => 20);
SELECT interactions > 0 AS refreshed FROM media_reco.refresh_neighbors('ev_gone');
SELECT count(*) AS metrics_before FROM media_reco.evaluate('ev_gone', 'te1', 5);
DROP TABLE ev_gone;
CREATE TEMP TABLE ev_gone_before AS
SELECT r.*, s.* FROM media_reco.recommenders r JOIN media_reco.neighbor_store s ON s.recommender_id = r.id
 WHERE r.name = 'ev_gone';
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.evaluate('ev_gone', 'te1', 5)$$);
SELECT count(*) AS lists,
       bool_and(source IS NULL AND dropped_source = 'evaluate_test.ev_gone') AS marked,
       NOT EXISTS (SELECT r.*, s.* FROM media_reco.recommenders r
                     JOIN media_reco.neighbor_store s ON s.recommender_id = r.id WHERE r.name = 'ev_gone'
                   EXCEPT SELECT * FROM ev_gone_before)
       AND NOT EXISTS (SELECT * FROM ev_gone_before
                       EXCEPT SELECT r.*, s.* FROM media_reco.recommenders r
                                JOIN media_reco.neighbor_store s ON s.recommender_id = r.id WHERE r.name = 'ev_gone') AS intact
  FROM ev_gone_before;
SELECT to_regclass('pg_temp.media_reco_eval_seen') IS NULL AS no_scratch_table;
SELECT media_reco.drop_recommender('ev_gone');
DROP TABLE ev_gone_before;
SELECT media_reco.drop_recommender('fresh'), media_reco.drop_recommender('ev'), media_reco.drop_recommender('tiny');

-- issue 9: source columns named like the generated queries' aliases (t, x) or their flag column
-- do not change the split.  The random rule in plain SQL: a row is test when the low 53 bits of
-- hash_record_extended(row, seed), as a fraction of 2^53, fall below test_fraction.
CREATE TABLE shadow (user_id int, item_id int, t text, x int, media_reco_is_test bool);
INSERT INTO shadow SELECT u, i, 'r' || u || '-' || i, u * i, u % 2 = 0
  FROM generate_series(1, 20) u, generate_series(1, 10) i;
SELECT * FROM media_reco.split_interactions('shadow', 'shadow_tr', 'shadow_te', test_fraction => 0.3, seed => 3);
SELECT NOT EXISTS (SELECT * FROM shadow s
                    WHERE ((hash_record_extended(s.*, 3) & 9007199254740991)::float8 / 9007199254740992 < 0.3)
                   EXCEPT ALL SELECT * FROM shadow_te)
       AND NOT EXISTS (SELECT * FROM shadow_te EXCEPT ALL SELECT * FROM shadow s
                        WHERE ((hash_record_extended(s.*, 3) & 9007199254740991)::float8 / 9007199254740992 < 0.3))
         AS test_is_the_hash_rule,
       NOT EXISTS (SELECT * FROM shadow EXCEPT ALL (SELECT * FROM shadow_tr UNION ALL SELECT * FROM shadow_te))
       AND (SELECT count(*) FROM shadow_tr) + (SELECT count(*) FROM shadow_te) = 200 AS complete;
SELECT attname FROM pg_attribute WHERE attrelid = 'shadow_te'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum;
-- temporal, with the time column itself named t: each user's latest floor(0.3 * 10) = 3 rows
CREATE TABLE shadow_time (user_id int, item_id int, t int);
INSERT INTO shadow_time SELECT u, i, i FROM generate_series(1, 5) u, generate_series(1, 10) i;
SELECT * FROM media_reco.split_interactions('shadow_time', 'sht_tr', 'sht_te', 'temporal', 0.3, time_col => 't');
SELECT user_id, array_agg(t ORDER BY t) AS test_times FROM sht_te GROUP BY 1 ORDER BY 1;
DROP TABLE shadow, shadow_tr, shadow_te, shadow_time, sht_tr, sht_te;

-- issue 9: the temporal count is floor(n * test_fraction) computed exactly on the fraction as
-- written (its 15 significant digits, as numeric), not in binary floating point, where
-- 90 * 0.7 = 62.99999999999999 and 100 * 0.29 = 28.999999999999996
CREATE TABLE fr AS SELECT c.u AS user_id, g AS item_id, g AS ts
  FROM (VALUES (1, 90), (2, 10), (3, 30), (4, 100)) c(u, n), generate_series(1, c.n) g;
CREATE TABLE fr_check (f numeric, user_id int, want numeric, got bigint);
DO $$
DECLARE
  f numeric;
BEGIN
  FOREACH f IN ARRAY ARRAY[0.7, 0.3, 0.1, 0.29] LOOP
    PERFORM * FROM media_reco.split_interactions('fr', 'fr_tr', 'fr_te', 'temporal', f::float8, time_col => 'ts');
    INSERT INTO fr_check
      SELECT f, c.user_id, floor(c.n * f), (SELECT count(*) FROM fr_te e WHERE e.user_id = c.user_id)
        FROM (SELECT user_id, count(*) AS n FROM fr GROUP BY 1) c;
    DROP TABLE fr_tr, fr_te;
  END LOOP;
END
$$;
SELECT f, user_id, want, got FROM fr_check
 WHERE (f, user_id) IN ((0.7, 1), (0.3, 2), (0.1, 3), (0.29, 4)) ORDER BY f;
SELECT count(*) AS checked, count(*) FILTER (WHERE want <> got) AS wrong FROM fr_check;
DROP TABLE fr, fr_check;
-- issue 9: coverage counts only items with a usable row (user, item and, when set, weight and
-- time not NULL), as the recommender and popular_items do: item 99 has only a NULL weight.
-- By hand: u1 gets 12, u3 gets 11, so 2 of the 3 items {10, 11, 12}; the baseline recommends
-- 12 to u1 and 11 to u3 as well.
CREATE TABLE cov_tr (user_id int, item_id int, w float8, ts float8);
INSERT INTO cov_tr VALUES (1, 10, 1, 0), (1, 11, 1, 0), (2, 10, 1, 0), (2, 11, 1, 0), (3, 10, 1, 0),
                          (3, 12, 1, 0), (4, 99, NULL, 0);
CREATE TABLE cov_te (user_id int, item_id int);
INSERT INTO cov_te VALUES (1, 12), (3, 11);
SELECT media_reco.create_recommender('cov', 'cov_tr', weight_col => 'w', k => 5);
SELECT items FROM media_reco.refresh_neighbors('cov');
SELECT metric, round(value::numeric, 6) AS value FROM media_reco.evaluate('cov', 'cov_te', 2)
 WHERE metric LIKE '%coverage' ORDER BY metric;
SELECT round(2::numeric / count(DISTINCT item_id), 6) AS want_by_sql FROM cov_tr
 WHERE user_id IS NOT NULL AND item_id IS NOT NULL AND w IS NOT NULL;
-- the same with a time column: item 98's only row has a NULL time, so still 3 items and 2/3
INSERT INTO cov_tr VALUES (5, 98, 1, NULL);
SELECT media_reco.create_recommender('cov_t', 'cov_tr', weight_col => 'w', k => 5,
                                     time_col => 'ts', half_life => '100 years');
SELECT items FROM media_reco.refresh_neighbors('cov_t');
SELECT metric, round(value::numeric, 6) AS value FROM media_reco.evaluate('cov_t', 'cov_te', 2)
 WHERE metric LIKE '%coverage' ORDER BY metric;
SELECT round(2::numeric / count(DISTINCT item_id), 6) AS want_by_sql FROM cov_tr
 WHERE user_id IS NOT NULL AND item_id IS NOT NULL AND w IS NOT NULL AND ts IS NOT NULL;
SELECT media_reco.drop_recommender('cov'), media_reco.drop_recommender('cov_t');
DROP TABLE cov_tr, cov_te;
