-- media_reco.pair_sums and pair_sums_neighbors (0.7.0): per-shard pair sums as bytes and their
-- exact merge, the part of a refresh that runs on Citus workers (test/t/010_citus.pl runs it on
-- a cluster).  Here, without Citus: a hand-checked case against brute-force SQL; states grouped
-- by disjoint sets of users and merged equal item_similarity over all the rows bit for bit
-- (float8 text is exact) for every weight kind the merge accepts; weights off a power-of-two
-- grid merged in fixed point; adjusted cosine's centred states and BM25's two passes (0.9.0);
-- Pearson's two passes (0.10.0); and every error branch (calls outside the aggregate, damaged bytes,
-- bad options, NULLs, non-finite weights).
\i test/sql/expect_error.sql
CREATE SCHEMA pair_sums_test;
SET search_path = pair_sums_test, public;
SET client_min_messages = warning;

-- 1. Hand-checked: users 1: {10: 1, 20: 2}, 2: {10: 3, 30: 1}, 3: {10: 1, 20: 1, 30: 2}
--    G(10,20) = 1·2 + 1·1 = 3, ‖10‖² = 11, ‖20‖² = 5, ‖30‖² = 5, G(10,30) = 3 + 2 = 5, G(20,30) = 2
CREATE TABLE h (user_id int, item_id int, w float8);
INSERT INTO h VALUES (1, 10, 1), (1, 20, 2), (2, 10, 3), (2, 30, 1), (3, 10, 1), (3, 20, 1), (3, 30, 2);
WITH brute AS (
  SELECT a.item_id AS i, b.item_id AS j, sum(a.w * b.w) / sqrt(
           (SELECT sum(w * w) FROM h WHERE item_id = a.item_id) * (SELECT sum(w * w) FROM h WHERE item_id = b.item_id)) AS sim,
         count(*) AS support
    FROM h a JOIN h b ON a.user_id = b.user_id AND a.item_id <> b.item_id GROUP BY 1, 2)
SELECT n.item_id, n.neighbor_id, round(n.similarity::numeric, 14) AS merged, round(b.sim::numeric, 14) AS brute,
       n.support, b.support AS brute_support, n.rank
  FROM media_reco.pair_sums_neighbors((SELECT media_reco.pair_sums(user_id, item_id, w, true, 'w') FROM h)) n
  JOIN brute b ON b.i = n.item_id AND b.j = n.neighbor_id
 ORDER BY 1, n.rank;
-- one state per user, merged as one
SELECT count(*) AS same_as_one_state FROM (
  SELECT * FROM media_reco.pair_sums_neighbors(ARRAY(SELECT media_reco.pair_sums(user_id, item_id, w, true, 'w') FROM h GROUP BY user_id))
  INTERSECT
  SELECT * FROM media_reco.item_similarity('h', weight_col => 'w')) x;

-- 2. Generated rows with duplicates; states grouped by user_id % 4 (disjoint users), merged,
--    against item_similarity on all the rows: the same lists bit for bit.
CREATE TABLE g AS
SELECT (1 + (n * 7919) % 250)::bigint AS user_id,
       (1 + floor(90 * power(((n * 104729) % 1000) / 1000.0, 2)))::bigint AS item_id,
       ((((n * 31) % 11) - 3) * 0.5)::float8 AS w_half,
       ((n * 13) % 7 + 1)::float8 AS w_int,
       (((n * 17) % 9) * 0.125)::float8 AS w_eighth,
       ln(2 + n % 17)::float8 AS w_log
  FROM generate_series(1, 9000) n;
SELECT count(*) > count(DISTINCT (user_id, item_id)) AS has_duplicates FROM g;
CREATE FUNCTION merged(wcol text, metric text, k int, ms int, sh float8, groups int) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE r text;
BEGIN
  EXECUTE format($q$SELECT md5(string_agg(x::text, ',' ORDER BY item_id, rank)) FROM media_reco.pair_sums_neighbors(
      ARRAY(SELECT media_reco.pair_sums(user_id, item_id, %s, %L, %L) FROM g GROUP BY user_id %% %s), %L, %s, %s, %s) x$q$,
      coalesce(quote_ident(wcol), '1'), metric NOT IN ('jaccard', 'conditional'), wcol, groups, metric, k, ms, sh) INTO r;
  RETURN r;
END $$;
CREATE FUNCTION single(wcol text, metric text, k int, ms int, sh float8) RETURNS text
LANGUAGE sql AS $$
  SELECT md5(string_agg(x::text, ',' ORDER BY item_id, rank))
    FROM media_reco.item_similarity('pair_sums_test.g', weight_col => wcol, metric => metric, k => k,
                                    min_support => ms, shrinkage => sh) x $$;
SELECT wcol, metric, k, ms, sh, groups, merged(wcol, metric, k, ms, sh, groups) = single(wcol, metric, k, ms, sh) AS bit_for_bit
  FROM (VALUES ('w_half', 'cosine', 10, 1, 0::float8, 4), ('w_half', 'cosine', 7, 3, 5, 4),
               ('w_int', 'cosine', 500, 1, 0, 3), ('w_eighth', 'cosine', 10, 2, 1.5, 4),
               (NULL, 'cosine', 10, 1, 0, 5), ('w_log', 'jaccard', 10, 2, 0, 4),
               ('w_half', 'conditional', 10, 1, 2.5, 4), ('w_int', 'cosine', 10, 1, 0, 1)) v(wcol, metric, k, ms, sh, groups)
 ORDER BY 1 NULLS FIRST, 2, 3;
-- the lists are not empty (a merge that dropped everything would also compare equal to nothing)
SELECT count(*) > 300 AS many_rows FROM media_reco.pair_sums_neighbors(
  (SELECT media_reco.pair_sums(user_id, item_id, w_half, true, 'w_half') FROM g), 'cosine', 10);
-- no rows: an empty bundle, no neighbours
SELECT length(media_reco.pair_sums(user_id, item_id, w_half, true, 'w_half')) AS empty_bundle_bytes FROM g WHERE false;
SELECT count(*) AS no_rows FROM media_reco.pair_sums_neighbors((SELECT media_reco.pair_sums(user_id, item_id, w_half, true, 'w_half') FROM g WHERE false));
-- NULL users, items and weights are skipped, as a refresh skips them
SELECT count(*) AS with_nulls_skipped FROM (
  SELECT * FROM media_reco.pair_sums_neighbors((SELECT media_reco.pair_sums(u, i, w, true, 'w')
    FROM (SELECT user_id AS u, item_id AS i, w FROM h UNION ALL VALUES (NULL, 10, 1), (4, NULL, 1), (4, 10, NULL)) x))
  EXCEPT SELECT * FROM media_reco.item_similarity('h', weight_col => 'w')) d;

-- 3. Weights off any power-of-two grid (ln(2 + n % 17)): one server adds cosine's products in fixed
--    point, the states carry fixed-point sums, and the merge is bit for bit again, in any grouping
SELECT wcol, metric, k, ms, sh, groups, merged(wcol, metric, k, ms, sh, groups) = single(wcol, metric, k, ms, sh) AS bit_for_bit
  FROM (VALUES ('w_log', 'cosine', 10, 1, 0::float8, 4), ('w_log', 'cosine', 7, 3, 5, 3),
               ('w_log', 'cosine', 500, 1, 0, 1), ('w_log', 'conditional', 10, 1, 0, 4)) v(wcol, metric, k, ms, sh, groups)
 ORDER BY 2, 3, 6;
-- the fixed-point cosines against a brute-force SQL cosine over the same rows (duplicates summed)
WITH w AS (SELECT user_id, item_id, sum(w_log) AS w FROM g GROUP BY 1, 2),
     d AS (SELECT a.item_id AS i, b.item_id AS j, sum(a.w * b.w) AS dot
             FROM w a JOIN w b USING (user_id) GROUP BY 1, 2),
     sim AS (SELECT d.i, d.j, d.dot / sqrt(di.dot * dj.dot) AS s
               FROM d JOIN d di ON di.i = d.i AND di.j = d.i JOIN d dj ON dj.i = d.j AND dj.j = d.j WHERE d.i <> d.j)
SELECT count(*) > 300 AS compared, max(abs(x.similarity - sim.s) / sim.s) < 1e-13 AS within_1e13
  FROM media_reco.item_similarity('pair_sums_test.g', weight_col => 'w_log', k => 10) x
  JOIN sim ON sim.i = x.item_id AND sim.j = x.neighbor_id;
-- an item whose weights span more than 2^22 : 1 (ln(...) and ln(...) / 2^30 side by side): its fixed-point
-- sums would cut products, so the cosine refuses to merge (the refresh then reads the rows); counts merge
ALTER TABLE g ADD COLUMN w_wide float8;
UPDATE g SET w_wide = CASE WHEN user_id % 2 = 0 THEN w_log ELSE w_log / 2^30 END;
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.pair_sums_neighbors(
  (SELECT media_reco.pair_sums(user_id, item_id, w_wide, true, 'w_wide') FROM g))$$);
SELECT merged('w_wide', 'jaccard', 10, 1, 0, 3) = single('w_wide', 'jaccard', 10, 1, 0) AS counts_merge;

-- 4. Adjusted cosine (0.9.0): pair_sums(metric, user, item, weight, weight_col) with metric
--    'adjusted_cosine' centres each user's weights by the user's mean in the state that holds
--    the user, as one server centres them, so the merge is bit for bit again.
--    Hand-checked against brute-force SQL on ratings r: user means 10/3, 11/3, 8/3 and 3 (only
--    positive similarities are kept: 10 and 20 are alike, 30 unlike both).
CREATE TABLE r (user_id int, item_id int, w float8);
INSERT INTO r VALUES (1, 10, 5), (1, 20, 4), (1, 30, 1), (2, 10, 4), (2, 20, 5), (2, 30, 2),
                     (3, 10, 1), (3, 20, 2), (3, 30, 5), (4, 10, 2), (4, 40, 4), (5, 20, 3), (5, 40, 5);
WITH c AS (SELECT user_id, item_id, w - avg(w) OVER (PARTITION BY user_id) AS w FROM r),
     brute AS (
  SELECT a.item_id AS i, b.item_id AS j, sum(a.w * b.w) / sqrt(
           (SELECT sum(w * w) FROM c WHERE item_id = a.item_id) * (SELECT sum(w * w) FROM c WHERE item_id = b.item_id)) AS sim,
         count(*) AS support
    FROM c a JOIN c b ON a.user_id = b.user_id AND a.item_id <> b.item_id GROUP BY 1, 2)
SELECT b.i AS item_id, b.j AS neighbor_id, round(n.similarity::numeric, 14) AS merged, round(b.sim::numeric, 14) AS brute,
       n.support, b.support AS brute_support, n.rank
  FROM brute b LEFT JOIN media_reco.pair_sums_neighbors(ARRAY(SELECT media_reco.pair_sums('adjusted_cosine', user_id, item_id, w, 'w')
                                              FROM r GROUP BY user_id), 'adjusted_cosine') n
    ON b.i = n.item_id AND b.j = n.neighbor_id
 ORDER BY 1, 2;
CREATE FUNCTION merged_for(wcol text, metric text, k int, ms int, sh float8, groups int) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE r text;
BEGIN
  EXECUTE format($q$SELECT md5(string_agg(x::text, ',' ORDER BY item_id, rank)) FROM media_reco.pair_sums_neighbors(
      ARRAY(SELECT media_reco.pair_sums(%L, user_id, item_id, %s, %L) FROM g GROUP BY user_id %% %s), %L, %s, %s, %s) x$q$,
      metric, coalesce(quote_ident(wcol), '1'), wcol, groups, metric, k, ms, sh) INTO r;
  RETURN r;
END $$;
SELECT wcol, metric, k, ms, sh, groups, merged_for(wcol, metric, k, ms, sh, groups) = single(wcol, metric, k, ms, sh) AS bit_for_bit
  FROM (VALUES ('w_int', 'adjusted_cosine', 10, 1, 0::float8, 4), ('w_int', 'adjusted_cosine', 7, 3, 5, 3),
               ('w_int', 'adjusted_cosine', 500, 1, 0, 1), ('w_half', 'adjusted_cosine', 10, 2, 1.5, 4),
               ('w_log', 'adjusted_cosine', 10, 1, 0, 4), ('w_half', 'adjusted_cosine', 10, 1, 0, 1),
               ('w_log', 'cosine', 10, 1, 0, 4), ('w_int', 'jaccard', 10, 2, 0, 4),
               ('w_int', 'conditional', 10, 1, 2.5, 3)) v(wcol, metric, k, ms, sh, groups)
 ORDER BY 1 NULLS FIRST, 2, 3;
-- against a brute-force SQL adjusted cosine over the same rows (duplicates summed, then centred)
WITH w AS (SELECT user_id, item_id, sum(w_int) AS w FROM g GROUP BY 1, 2),
     c AS (SELECT user_id, item_id, w - avg(w) OVER (PARTITION BY user_id) AS w FROM w),
     d AS (SELECT a.item_id AS i, b.item_id AS j, sum(a.w * b.w) AS dot
             FROM c a JOIN c b USING (user_id) GROUP BY 1, 2),
     sim AS (SELECT d.i, d.j, d.dot / sqrt(di.dot * dj.dot) AS s
               FROM d JOIN d di ON di.i = d.i AND di.j = d.i JOIN d dj ON dj.i = d.j AND dj.j = d.j WHERE d.i <> d.j)
SELECT count(*) > 100 AS compared, max(abs(x.similarity - sim.s)) < 1e-13 AS within_1e13
  FROM media_reco.pair_sums_neighbors(ARRAY(SELECT media_reco.pair_sums('adjusted_cosine', user_id, item_id, w_int, 'w_int')
                                              FROM g GROUP BY user_id % 4), 'adjusted_cosine', 10) x
  JOIN sim ON sim.i = x.item_id AND sim.j = x.neighbor_id;
-- centred sums are adjusted cosine's only, and adjusted cosine reads only centred sums (22023)
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.pair_sums_neighbors(
  (SELECT media_reco.pair_sums('adjusted_cosine', user_id, item_id, w, 'w') FROM h), 'cosine')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.pair_sums_neighbors(
  (SELECT media_reco.pair_sums(user_id, item_id, w, true, 'w') FROM h), 'adjusted_cosine')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.pair_sums_neighbors(ARRAY[
  (SELECT media_reco.pair_sums('adjusted_cosine', user_id, item_id, w, 'w') FROM h WHERE user_id = 1),
  (SELECT media_reco.pair_sums('cosine', user_id, item_id, w, 'w') FROM h WHERE user_id > 1)], 'adjusted_cosine')$$);
-- ... while their counts are the counts
SELECT count(*) AS centred_counts_as_jaccard FROM (
  SELECT * FROM media_reco.pair_sums_neighbors((SELECT media_reco.pair_sums('adjusted_cosine', user_id, item_id, w, 'w') FROM h), 'jaccard')
  INTERSECT SELECT * FROM media_reco.item_similarity('h', metric => 'jaccard')) x;
-- metrics that are not functions of per-user pair sums have no states; unknown and NULL metrics
SELECT pg_temp.expect_error($$SELECT media_reco.pair_sums('ease', user_id, item_id, w, 'w') FROM h$$);
SELECT pg_temp.expect_error($$SELECT media_reco.pair_sums('nosuch', user_id, item_id, w, 'w') FROM h$$);
SELECT pg_temp.expect_error($$SELECT media_reco.pair_sums(NULL::text, user_id, item_id, w, 'w') FROM h$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.pair_sums_neighbors(
  (SELECT media_reco.pair_sums('cosine', user_id, item_id, w, 'w') FROM h), 'pearson')$$);
-- a quoted boolean still means the boolean form (0.8.0's calls keep their meaning)
SELECT count(*) AS quoted_true_is_boolean FROM (
  SELECT * FROM media_reco.pair_sums_neighbors((SELECT media_reco.pair_sums(user_id, item_id, w, 't', 'w') FROM h))
  INTERSECT SELECT * FROM media_reco.item_similarity('h', weight_col => 'w')) x;
-- unweighted: every user's weights 1, all centred to 0, no similarity on one server or merged
SELECT (SELECT count(*) FROM media_reco.pair_sums_neighbors(
          ARRAY(SELECT media_reco.pair_sums('adjusted_cosine', user_id, item_id, 1, NULL) FROM g GROUP BY user_id % 3),
          'adjusted_cosine')) AS merged_unweighted,
       (SELECT count(*) FROM media_reco.item_similarity('pair_sums_test.g', metric => 'adjusted_cosine')) AS single_unweighted;

-- 5. BM25 (0.9.0) in two passes: pair_sums('bm25', ...) gives each group's users' lengths, whose
--    exact mean (pair_sums_mean_length) is one server's; pair_sums('bm25', ..., options) with that
--    mean_length gives the pair sums of the BM25 terms, merged bit for bit into item_similarity's lists.
CREATE FUNCTION mean_length(wcol text, groups int) RETURNS float8
LANGUAGE plpgsql AS $$
DECLARE r float8;
BEGIN
  EXECUTE format($q$SELECT media_reco.pair_sums_mean_length(ARRAY(SELECT media_reco.pair_sums('bm25', user_id, item_id, %s, %L)
                     FROM g GROUP BY user_id %% %s))$q$, coalesce(quote_ident(wcol), '1'), wcol, groups) INTO r;
  RETURN r;
END $$;
CREATE FUNCTION merged_bm25(wcol text, k1 float8, b float8, k int, ms int, sh float8, groups int) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE r text;
BEGIN
  EXECUTE format($q$SELECT md5(string_agg(x::text, ',' ORDER BY item_id, rank)) FROM media_reco.pair_sums_neighbors(
      ARRAY(SELECT media_reco.pair_sums('bm25', user_id, item_id, %s, %L, %L::jsonb) FROM g GROUP BY user_id %% %s), 'bm25', %s, %s, %s) x$q$,
      coalesce(quote_ident(wcol), '1'), wcol,
      jsonb_build_object('bm25_k1', k1, 'bm25_b', b, 'mean_length', mean_length(wcol, groups)), groups, k, ms, sh) INTO r;
  RETURN r;
END $$;
CREATE FUNCTION single_bm25(wcol text, k1 float8, b float8, k int, ms int, sh float8) RETURNS text
LANGUAGE sql AS $$
  SELECT md5(string_agg(x::text, ',' ORDER BY item_id, rank))
    FROM media_reco.item_similarity('pair_sums_test.g', weight_col => wcol, metric => 'bm25', k => k,
                                    min_support => ms, shrinkage => sh, bm25_k1 => k1, bm25_b => b) x $$;
-- the mean length: the same from any grouping, and the mean of the users' sums
WITH l AS (SELECT user_id, sum(w_log) AS len FROM g GROUP BY 1)
SELECT mean_length('w_log', 1) = mean_length('w_log', 4) AND mean_length('w_log', 4) = mean_length('w_log', 7) AS same_mean,
       abs(mean_length('w_log', 4) - (SELECT avg(len) FROM l)) < 1e-12 * (SELECT avg(len) FROM l) AS mean_of_lengths,
       mean_length(NULL, 3) = (SELECT count(*)::float8 / count(DISTINCT user_id) FROM g) AS unweighted_mean_is_rows_per_user;
SELECT wcol, k1, b, k, ms, sh, groups,
       merged_bm25(wcol, k1, b, k, ms, sh, groups) = single_bm25(wcol, k1, b, k, ms, sh) AS bit_for_bit
  FROM (VALUES ('w_int', 100::float8, 0.8::float8, 10, 1, 0::float8, 4), ('w_int', 1.2, 0.75, 7, 2, 3, 3),
               ('w_log', 100, 0.8, 10, 1, 0, 4), ('w_log', 1.2, 0.75, 500, 1, 0, 1),
               (NULL, 100, 0.8, 10, 1, 0, 3), ('w_int', 0, 0.5, 10, 1, 0, 4),
               ('w_int', 1e13, 0.8, 10, 1, 0, 3)) v(wcol, k1, b, k, ms, sh, groups)
 ORDER BY 1 NULLS FIRST, 2, 4;
SELECT count(*) > 300 AS many_rows FROM media_reco.pair_sums_neighbors(
  (SELECT media_reco.pair_sums('bm25', user_id, item_id, w_int, 'w_int', (SELECT jsonb_build_object('mean_length', mean_length('w_int', 1)))) FROM g),
  'bm25', 10);
-- against a brute-force SQL BM25 over the same rows (duplicates summed; K1 = 100, B = 0.8)
WITH w AS (SELECT user_id, item_id, sum(w_int) AS w FROM g GROUP BY 1, 2),
     n AS (SELECT count(DISTINCT user_id)::float8 AS n FROM w),
     len AS (SELECT user_id, sum(w) AS len FROM w GROUP BY 1),
     idf AS (SELECT item_id, ln((SELECT n FROM n)) - ln(1 + count(*)) AS idf FROM w GROUP BY 1),
     t AS (SELECT w.user_id, w.item_id,
                  w.w * 101 / (100 * (0.2 + 0.8 * len.len / (SELECT avg(len) FROM len)) + w.w) * idf.idf AS t
             FROM w JOIN len USING (user_id) JOIN idf USING (item_id)),
     sim AS (SELECT a.item_id AS i, b.item_id AS j, sum(a.t * b.t) AS s
               FROM t a JOIN t b ON a.user_id = b.user_id AND a.item_id <> b.item_id GROUP BY 1, 2)
SELECT count(*) > 300 AS compared, max(abs(x.similarity - sim.s) / abs(sim.s)) < 1e-12 AS within_1e12
  FROM media_reco.pair_sums_neighbors(
         ARRAY(SELECT media_reco.pair_sums('bm25', user_id, item_id, w_int, 'w_int', (SELECT jsonb_build_object('mean_length', mean_length('w_int', 4))))
                 FROM g GROUP BY user_id % 4), 'bm25', 10) x
  JOIN sim ON sim.i = x.item_id AND sim.j = x.neighbor_id;
-- a second pass with another mean length, first-pass states merged, states of other kinds, bad options
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.pair_sums_neighbors(
  (SELECT media_reco.pair_sums('bm25', user_id, item_id, w_int, 'w_int', '{"mean_length": 50}') FROM g), 'bm25')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.pair_sums_neighbors(
  (SELECT media_reco.pair_sums('bm25', user_id, item_id, w_int, 'w_int') FROM g), 'bm25')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.pair_sums_neighbors(
  (SELECT media_reco.pair_sums('cosine', user_id, item_id, w_int, 'w_int') FROM g), 'bm25')$$);
SELECT pg_temp.expect_error(format($$SELECT * FROM media_reco.pair_sums_neighbors(
  (SELECT media_reco.pair_sums('bm25', user_id, item_id, w_int, 'w_int', '{"mean_length": %s}') FROM g), 'cosine')$$,
  mean_length('w_int', 1)));
SELECT pg_temp.expect_error($$SELECT media_reco.pair_sums_mean_length((SELECT media_reco.pair_sums('cosine', user_id, item_id, w, 'w') FROM h))$$);
SELECT pg_temp.expect_error($$SELECT media_reco.pair_sums_mean_length(NULL::bytea)$$);
SELECT pg_temp.expect_error($$SELECT media_reco.pair_sums_mean_length('\x0102'::bytea)$$);
SELECT pg_temp.expect_error($$SELECT media_reco.pair_sums('bm25', user_id, item_id, w, 'w', '{"bm25_b": 2}') FROM h$$);
SELECT pg_temp.expect_error($$SELECT media_reco.pair_sums('bm25', user_id, item_id, w, 'w', '{"mean_length": "x"}') FROM h$$);
SELECT pg_temp.expect_error($$SELECT media_reco.pair_sums('bm25', user_id, item_id, w, 'w', '[1]') FROM h$$);
SELECT pg_temp.expect_error($$SELECT media_reco.pair_sums('cosine', user_id, item_id, w, 'w', '{"bm25_k1": 1}') FROM h$$);
-- NULL options: the metric form without options (bm25's first pass)
SELECT media_reco.pair_sums_mean_length((SELECT media_reco.pair_sums('bm25', user_id, item_id, w, 'w', NULL) FROM h)) AS h_mean_length;

-- 6. Pearson (0.10.0) in two passes: pair_sums('pearson', ...) gives each group's items' exact
--    sums, whose means (pair_sums_item_means) are one server's; pair_sums('pearson', ..., NULL,
--    item_means) centres each item's weights on them, and the merge is item_similarity's lists bit
--    for bit.  Hand-checked against brute-force SQL on r: item means 3, 3.5, 8/3 and 4.5.
WITH c AS (SELECT user_id, item_id, w - avg(w) OVER (PARTITION BY item_id) AS w FROM r),
     brute AS (
  SELECT a.item_id AS i, b.item_id AS j, sum(a.w * b.w) / sqrt(
           (SELECT sum(w * w) FROM c WHERE item_id = a.item_id) * (SELECT sum(w * w) FROM c WHERE item_id = b.item_id)) AS sim,
         count(*) AS support
    FROM c a JOIN c b ON a.user_id = b.user_id AND a.item_id <> b.item_id GROUP BY 1, 2)
SELECT b.i AS item_id, b.j AS neighbor_id, round(n.similarity::numeric, 14) AS merged, round(b.sim::numeric, 14) AS brute,
       n.support, b.support AS brute_support, n.rank
  FROM brute b LEFT JOIN media_reco.pair_sums_neighbors(ARRAY(
         SELECT media_reco.pair_sums('pearson', user_id, item_id, w, 'w', NULL,
                  (SELECT media_reco.pair_sums_item_means(ARRAY(SELECT media_reco.pair_sums('pearson', user_id, item_id, w, 'w')
                                                                  FROM r GROUP BY user_id))))
           FROM r GROUP BY user_id), 'pearson') n
    ON b.i = n.item_id AND b.j = n.neighbor_id
 ORDER BY 1, 2;
CREATE FUNCTION item_means(wcol text, groups int) RETURNS bytea
LANGUAGE plpgsql AS $$
DECLARE r bytea;
BEGIN
  EXECUTE format($q$SELECT media_reco.pair_sums_item_means(ARRAY(SELECT media_reco.pair_sums('pearson', user_id, item_id, %s, %L)
                     FROM g GROUP BY user_id %% %s))$q$, coalesce(quote_ident(wcol), '1'), wcol, groups) INTO r;
  RETURN r;
END $$;
CREATE FUNCTION merged_pearson(wcol text, k int, ms int, sh float8, groups int, first_groups int) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE r text;
BEGIN
  EXECUTE format($q$SELECT md5(string_agg(x::text, ',' ORDER BY item_id, rank)) FROM media_reco.pair_sums_neighbors(
      ARRAY(SELECT media_reco.pair_sums('pearson', user_id, item_id, %s, %L, NULL, $1) FROM g GROUP BY user_id %% %s),
      'pearson', %s, %s, %s) x$q$,
      coalesce(quote_ident(wcol), '1'), wcol, groups, k, ms, sh) INTO r USING item_means(wcol, first_groups);
  RETURN r;
END $$;
-- the means: the same bytes from any grouping of the first pass
SELECT item_means('w_log', 1) = item_means('w_log', 4) AND item_means('w_log', 4) = item_means('w_log', 7) AS same_means,
       length(item_means('w_log', 3)) AS means_bytes;
SELECT wcol, k, ms, sh, groups, first_groups,
       merged_pearson(wcol, k, ms, sh, groups, first_groups) = single(wcol, 'pearson', k, ms, sh) AS bit_for_bit
  FROM (VALUES ('w_int', 10, 1, 0::float8, 4, 3), ('w_int', 7, 3, 5, 3, 1), ('w_int', 500, 1, 0, 1, 4),
               ('w_half', 10, 2, 1.5, 4, 2), ('w_half', 500, 1, 0, 5, 5), ('w_log', 10, 1, 0, 4, 7),
               ('w_log', 500, 1, 0, 3, 1)) v(wcol, k, ms, sh, groups, first_groups)
 ORDER BY 1, 2, 5;
-- (these rows' Pearson similarities are mostly negative: about 150 positive pairs at k = 10)
SELECT count(*) > 100 AS many_rows FROM media_reco.pair_sums_neighbors(
  (SELECT media_reco.pair_sums('pearson', user_id, item_id, w_log, 'w_log', NULL, (SELECT item_means('w_log', 2))) FROM g), 'pearson', 10);
-- unweighted: every item's weights 1, all centred to 0, no similarity on one server or merged
SELECT (SELECT count(*) FROM media_reco.pair_sums_neighbors(
          ARRAY(SELECT media_reco.pair_sums('pearson', user_id, item_id, 1, NULL, NULL, (SELECT item_means(NULL, 1))) FROM g GROUP BY user_id % 3),
          'pearson')) AS merged_unweighted,
       (SELECT count(*) FROM media_reco.item_similarity('pair_sums_test.g', metric => 'pearson')) AS single_unweighted;
-- against a brute-force SQL Pearson over the same rows (duplicates summed, then centred on the item's mean)
WITH w AS (SELECT user_id, item_id, sum(w_log) AS w FROM g GROUP BY 1, 2),
     c AS (SELECT user_id, item_id, w - avg(w) OVER (PARTITION BY item_id) AS w FROM w),
     d AS (SELECT a.item_id AS i, b.item_id AS j, sum(a.w * b.w) AS dot
             FROM c a JOIN c b USING (user_id) GROUP BY 1, 2),
     sim AS (SELECT d.i, d.j, d.dot / sqrt(di.dot * dj.dot) AS s
               FROM d JOIN d di ON di.i = d.i AND di.j = d.i JOIN d dj ON dj.i = d.j AND dj.j = d.j WHERE d.i <> d.j)
SELECT count(*) > 100 AS compared, max(abs(x.similarity - sim.s) / sim.s) < 1e-12 AS within_1e12
  FROM media_reco.pair_sums_neighbors(ARRAY(SELECT media_reco.pair_sums('pearson', user_id, item_id, w_log, 'w_log', NULL, (SELECT item_means('w_log', 4)))
                                              FROM g GROUP BY user_id % 4), 'pearson', 10) x
  JOIN sim ON sim.i = x.item_id AND sim.j = x.neighbor_id;
-- means of other rows (a row changed between the passes): the merge says which item was centred wrong
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.pair_sums_neighbors(
  (SELECT media_reco.pair_sums('pearson', user_id, item_id, w_int, 'w_int', NULL,
     (SELECT media_reco.pair_sums_item_means((SELECT media_reco.pair_sums('pearson', user_id, item_id,
        CASE WHEN user_id = 1 AND item_id = 1 THEN w_int + 1 ELSE w_int END, 'w_int') FROM g)))) FROM g), 'pearson')$$);
-- an item the means do not cover (rows of a new item between the passes) is centred on its mean over
-- the state's own rows: right when one state holds all its users, refused (naming it) when several do
CREATE TEMP TABLE means_without_1 AS SELECT media_reco.pair_sums_item_means(
  (SELECT media_reco.pair_sums('pearson', user_id, item_id, w_int, 'w_int') FROM g WHERE item_id > 1)) AS m;
SELECT (SELECT md5(string_agg(x::text, ',' ORDER BY item_id, rank)) FROM media_reco.pair_sums_neighbors(
          (SELECT media_reco.pair_sums('pearson', user_id, item_id, w_int, 'w_int', NULL, (SELECT m FROM means_without_1)) FROM g),
          'pearson', 10) x)
     = single('w_int', 'pearson', 10, 1, 0) AS one_state_new_item_exact;
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.pair_sums_neighbors(ARRAY(
  SELECT media_reco.pair_sums('pearson', user_id, item_id, w_int, 'w_int', NULL, (SELECT m FROM means_without_1))
    FROM g GROUP BY user_id % 3), 'pearson')$$);
-- first-pass states merged; pearson states for cosine, cosine states for pearson; means of cosine states
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.pair_sums_neighbors(
  (SELECT media_reco.pair_sums('pearson', user_id, item_id, w_int, 'w_int') FROM g), 'pearson')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.pair_sums_neighbors(
  (SELECT media_reco.pair_sums('pearson', user_id, item_id, w_int, 'w_int', NULL, (SELECT item_means('w_int', 1))) FROM g), 'cosine')$$);
SELECT pg_temp.expect_error($$SELECT media_reco.pair_sums_item_means((SELECT media_reco.pair_sums('cosine', user_id, item_id, w, 'w') FROM h))$$);
-- ... while their counts are the counts
SELECT count(*) AS pearson_counts_as_conditional FROM (
  SELECT * FROM media_reco.pair_sums_neighbors(
    (SELECT media_reco.pair_sums('pearson', user_id, item_id, w_int, 'w_int', NULL, (SELECT item_means('w_int', 1))) FROM g), 'conditional', 10)
  EXCEPT SELECT * FROM media_reco.item_similarity('pair_sums_test.g', metric => 'conditional', k => 10)) x;
-- item_means for another metric; pearson takes no options; NULL, damaged and foreign means
SELECT pg_temp.expect_error($$SELECT media_reco.pair_sums('cosine', user_id, item_id, w_int, 'w_int', NULL, (SELECT item_means('w_int', 1))) FROM g$$);
SELECT pg_temp.expect_error($$SELECT media_reco.pair_sums('pearson', user_id, item_id, w_int, 'w_int', '{"bm25_k1": 1}', (SELECT item_means('w_int', 1))) FROM g$$);
SELECT pg_temp.expect_error($$SELECT media_reco.pair_sums_item_means(NULL::bytea)$$);
SELECT pg_temp.expect_error($$SELECT media_reco.pair_sums_item_means('\x0102'::bytea)$$);
SELECT pg_temp.expect_error($$SELECT media_reco.pair_sums('pearson', user_id, item_id, w_int, 'w_int', NULL, '\x0102'::bytea) FROM g$$);
SELECT pg_temp.expect_error($$SELECT media_reco.pair_sums('pearson', user_id, item_id, w_int, 'w_int', NULL,
  (SELECT media_reco.pair_sums(user_id, item_id, w, true, 'w') FROM h)) FROM g$$);
SELECT count(*) AS flipped, count(*) FILTER (WHERE e LIKE '22P03: invalid item means%') AS refused
  FROM (SELECT pg_temp.expect_error(format($$SELECT media_reco.pair_sums('pearson', user_id, item_id, w, 'w', NULL, %L::bytea) FROM h$$,
               overlay(b PLACING set_byte('\x00'::bytea, 0, (get_byte(b, p) # 85)) FROM p + 1 FOR 1))) AS e
          FROM (SELECT media_reco.pair_sums_item_means((SELECT media_reco.pair_sums('pearson', user_id, item_id, w, 'w') FROM h)) AS b) s,
               generate_series(0, length(b) - 1) p) x;
-- NULL item_means: the first pass
SELECT length(media_reco.pair_sums_item_means((SELECT media_reco.pair_sums('pearson', user_id, item_id, w, 'w', NULL, NULL) FROM h))) AS h_means_bytes;

-- 7. Time decay on the workers (0.10.0): media_reco.decayed_weight is the decay a refresh with a
--    time column applies, given its now() (PostgreSQL's internal microseconds) and half-life in
--    seconds as literals, so pair sums of decayed weights merge into the refresh's lists bit for bit.
CREATE TABLE dg AS
SELECT user_id, item_id, w_int AS w,
       timestamptz '2026-01-01 00:00:00+00' + ((user_id * 37 + item_id * 11) % 2000) * interval '1 hour 7 seconds' AS t,
       extract(epoch FROM timestamptz '2026-01-01 00:00:00+00')::float8 + ((user_id * 37 + item_id * 11) % 2000) * 3607.25 AS te
  FROM g;
SELECT media_reco.create_recommender('dg_t', 'pair_sums_test.dg', weight_col => 'w', k => 10,
                                     time_col => 't', half_life => '10 days');
SELECT media_reco.create_recommender('dg_te', 'pair_sums_test.dg', weight_col => 'w', metric => 'pearson', k => 10,
                                     time_col => 'te', half_life => '3 days 5 hours');
BEGIN;
SELECT count(*) > 0 AS refreshed FROM media_reco.refresh_neighbors('dg_t');
SELECT count(*) > 0 AS refreshed FROM media_reco.refresh_neighbors('dg_te');
CREATE TEMP TABLE ref AS SELECT ((extract(epoch FROM now()) - 946684800) * 1000000)::bigint AS us;
SELECT (SELECT md5(string_agg(item_id || ':' || neighbor_id || '=' || similarity || '/' || support, ',' ORDER BY item_id, rank))
          FROM media_reco.item_neighbors WHERE recommender = 'dg_t')
     = (SELECT md5(string_agg(item_id || ':' || neighbor_id || '=' || similarity || '/' || support, ',' ORDER BY item_id, rank))
          FROM media_reco.pair_sums_neighbors(ARRAY(
                 SELECT media_reco.pair_sums('cosine', user_id, item_id,
                          media_reco.decayed_weight(w, t, (SELECT us FROM ref), 864000, 't'), 'w')
                   FROM dg GROUP BY user_id % 4), 'cosine', 10)) AS timestamptz_bit_for_bit,
       (SELECT count(*) FROM media_reco.item_neighbors WHERE recommender = 'dg_t') > 300 AS many_rows;
SELECT (SELECT md5(string_agg(item_id || ':' || neighbor_id || '=' || similarity || '/' || support, ',' ORDER BY item_id, rank))
          FROM media_reco.item_neighbors WHERE recommender = 'dg_te')
     = (SELECT md5(string_agg(item_id || ':' || neighbor_id || '=' || similarity || '/' || support, ',' ORDER BY item_id, rank))
          FROM media_reco.pair_sums_neighbors(ARRAY(
                 SELECT media_reco.pair_sums('pearson', user_id, item_id,
                          media_reco.decayed_weight(w, te, (SELECT us FROM ref), 277200, 'te'), 'w', NULL,
                          (SELECT media_reco.pair_sums_item_means(ARRAY(
                             SELECT media_reco.pair_sums('pearson', user_id, item_id,
                                      media_reco.decayed_weight(w, te, (SELECT us FROM ref), 277200, 'te'), 'w')
                               FROM dg GROUP BY user_id % 2))))
                   FROM dg GROUP BY user_id % 3), 'pearson', 10)) AS epoch_seconds_pearson_bit_for_bit,
       (SELECT count(*) FROM media_reco.item_neighbors WHERE recommender = 'dg_te') > 50 AS some_rows;
COMMIT;
-- against the definition: one half-life old weighs exactly half, two a quarter
SELECT media_reco.decayed_weight(8, timestamptz '2026-01-01 00:00:00+00',
         ((extract(epoch FROM timestamptz '2026-01-11 00:00:00+00') - 946684800) * 1000000)::bigint, 864000, 't') AS half,
       media_reco.decayed_weight(8, extract(epoch FROM timestamptz '2026-01-01 00:00:00+00')::float8,
         ((extract(epoch FROM timestamptz '2026-01-21 00:00:00+00') - 946684800) * 1000000)::bigint, 864000, 'te') AS quarter,
       media_reco.decayed_weight(NULL, now(), 0, 1, 't') IS NULL AS strict;
SELECT pg_temp.expect_error($$SELECT media_reco.decayed_weight(1, now(), 0, 0, 't')$$);
SELECT pg_temp.expect_error($$SELECT media_reco.decayed_weight(1, 'infinity'::timestamptz, 0, 60, 'watched_at')$$);
SELECT pg_temp.expect_error($$SELECT media_reco.decayed_weight(1, 'NaN'::float8, 0, 60, 'te')$$);
SELECT media_reco.decayed_weight('Infinity', now(), 0, 60, 't') AS infinite_weight_kept;
SELECT media_reco.drop_recommender('dg_t'), media_reco.drop_recommender('dg_te');

-- 8. Errors
-- outside the aggregate
SELECT pg_temp.expect_error($$SELECT media_reco.pair_sums_step(NULL, 1, 2, 1.0, true, 'w')$$);
SELECT pg_temp.expect_error($$SELECT media_reco.pair_sums_combine(NULL, '\x00'::bytea)$$);
-- a state the transition did not build
CREATE AGGREGATE pg_temp.bad_sums(bigint, bigint, float8, boolean, text) (
  SFUNC = media_reco.pair_sums_step, STYPE = bytea, INITCOND = '\x00');
SELECT pg_temp.expect_error($$SELECT pg_temp.bad_sums(user_id, item_id, w, true, 'w') FROM h$$);
-- NULL weighted; non-finite weights (the single-node message, naming the column)
SELECT pg_temp.expect_error($$SELECT media_reco.pair_sums(user_id, item_id, w, NULL, 'w') FROM h$$);
SELECT pg_temp.expect_error($$SELECT media_reco.pair_sums(u, i, w, true, 'plays') FROM (VALUES (1, 2, 'NaN'::float8)) v(u, i, w)$$);
SELECT pg_temp.expect_error($$SELECT media_reco.pair_sums(u, i, w, true, NULL) FROM (VALUES (1, 2, '-Infinity'::float8)) v(u, i, w)$$);
-- damaged bytes: not a bundle, a bad count, truncated, a bundle holding junk
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.pair_sums_neighbors('\x0102'::bytea)$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.pair_sums_neighbors('\x4d5250420900000000'::bytea)$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.pair_sums_neighbors(
  (SELECT substring(media_reco.pair_sums(user_id, item_id, w, true, 'w') FROM 1 FOR 60) FROM h))$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.pair_sums_neighbors('\x4d525042010000000300000000000000616263'::bytea)$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.pair_sums_neighbors(ARRAY['\x4d52'::bytea])$$);
-- a state cut short (its bundle's length field fixed up): refused by the state's own checksum
CREATE FUNCTION cut_state(b bytea, cut int) RETURNS bytea LANGUAGE sql AS $$
  SELECT substring(b FROM 1 FOR 8)
         || (SELECT decode(string_agg(lpad(to_hex(((length(b) - 16 - cut)::bigint >> (8 * i)) & 255), 2, '0'), '' ORDER BY i), 'hex')
               FROM generate_series(0, 7) i)
         || substring(b FROM 17 FOR length(b) - 16 - cut) $$;
SELECT pg_temp.expect_error(format($$SELECT * FROM media_reco.pair_sums_neighbors(%L::bytea)$$,
  cut_state((SELECT media_reco.pair_sums(user_id, item_id, w, true, 'w') FROM h), 9)));
-- every single flipped byte of a real bundle: refused (the states carry a CRC-32C), never a crash
SELECT count(*) AS flipped, count(*) FILTER (WHERE e LIKE '22P03: invalid partial pair sums%') AS refused
  FROM (SELECT pg_temp.expect_error(format($$SELECT count(*) FROM media_reco.pair_sums_neighbors(%L::bytea)$$,
               overlay(b PLACING set_byte('\x00'::bytea, 0, (get_byte(b, p) # 85)) FROM p + 1 FOR 1))) AS e
          FROM (SELECT media_reco.pair_sums(user_id, item_id, w, true, 'w') AS b FROM h) s,
               generate_series(0, length(b) - 1) p) x;
-- options
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.pair_sums_neighbors((SELECT media_reco.pair_sums(user_id, item_id, w, true, 'w') FROM h), 'ease')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.pair_sums_neighbors((SELECT media_reco.pair_sums(user_id, item_id, w, true, 'w') FROM h), 'cosine', 0)$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.pair_sums_neighbors((SELECT media_reco.pair_sums(user_id, item_id, w, true, 'w') FROM h), 'nosuch')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.pair_sums_neighbors(NULL::bytea)$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.pair_sums_neighbors((SELECT media_reco.pair_sums(user_id, item_id, w, true, 'w') FROM h), k => NULL)$$);
-- counts-only states cannot serve cosine
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.pair_sums_neighbors((SELECT media_reco.pair_sums(user_id, item_id, w, false, 'w') FROM h), 'cosine')$$);
-- the GUC exists and is auto by default
SHOW media_reco.citus_pair_sums;

RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA pair_sums_test CASCADE;
