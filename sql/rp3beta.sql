-- RP3beta (metric => 'rp3beta', Paudel et al. 2017): with s(i) = Σ_u w(u,i), t(u) = Σ_j w(u,j),
-- W[i][j] = Σ_u (w(u,i)/s(i))^α · (w(u,j)/t(u))^α / s(j)^β  (i ≠ j), α = rp3_alpha, β = rp3_beta;
-- i's neighbours are its k largest W[i][j] > 0 with support >= min_support, times
-- support / (support + shrinkage), ties by smaller j.
-- Hand-checked tiny cases; the definition in plain SQL on a generated table (several α, β, k,
-- shrinkage, min_support, weights); the serving functions against brute-force SQL; the refresh
-- with decay; every error branch; thread-count and row-order independence.
\i test/sql/expect_error.sql
\i test/sql/learned_serving.sql
\i test/sql/order_independence.sql
CREATE SCHEMA rp3beta_test;
SET search_path = rp3beta_test, public;
SET client_min_messages = warning;

-- ---------------------------------------------------------------------------
-- 1. Three items, weighted:  user 1: item 1 (w 2), item 2 (w 1);  user 2: items 1, 2, 3 (w 1 each);
--    user 3: item 3 (w 3).   s(1) = 3, s(2) = 2, s(3) = 4;  t(1) = t(2) = t(3) = 3.
--    β = 0, α = 1:  W[1][2] = (2/3)(1/3) + (1/3)(1/3) = 1/3      W[2][1] = (1/2)(2/3) + (1/2)(1/3) = 1/2
--                   W[1][3] = (1/3)(1/3) = 1/9                   W[3][1] = (1/4)(1/3) = 1/12
--                   W[2][3] = (1/2)(1/3) = 1/6                   W[3][2] = (1/4)(1/3) = 1/12
--    so item 3's two neighbours tie exactly (the same single product): 1 ranks before 2.
CREATE TABLE r1 (user_id int, item_id int, w float8);
INSERT INTO r1 VALUES (3, 3, 3), (2, 3, 1), (2, 2, 1), (2, 1, 1), (1, 2, 1), (1, 1, 2);
SELECT item_id, neighbor_id, round(similarity::numeric, 12) AS similarity, support, rank
  FROM media_reco.item_similarity('r1', weight_col => 'w', metric => 'rp3beta', rp3_beta => 0);
SELECT round(1 / 3.0, 12) AS w12, round(1 / 9.0, 12) AS w13, round(1 / 2.0, 12) AS w21,
       round(1 / 6.0, 12) AS w23, round(1 / 12.0, 12) AS w31;
SELECT count(*) AS neighbours, count(DISTINCT similarity) AS distinct_values
  FROM media_reco.item_similarity('r1', weight_col => 'w', metric => 'rp3beta', rp3_beta => 0) WHERE item_id = 3;
--    α = 2, β = 1/2:  W[1][2] = ((2/3)²(1/3)² + (1/3)²(1/3)²) / √2 = (5/81) / √2,
--    W[2][1] = ((1/2)²(2/3)² + (1/2)²(1/3)²) / √3 = (5/36) / √3,  W[1][3] = (1/81) / 2,
--    W[3][1] = (1/144) / √3,  W[2][3] = (1/36) / 2,  W[3][2] = (1/144) / √2
SELECT m.item_id, m.neighbor_id, m.rank, abs(m.similarity - w.want) < 1e-14 * w.want AS as_by_hand
  FROM media_reco.item_similarity('r1', weight_col => 'w', metric => 'rp3beta', rp3_alpha => 2, rp3_beta => 0.5) m
  JOIN (VALUES (1, 2, 5 / 81.0 / sqrt(2)), (2, 1, 5 / 36.0 / sqrt(3)), (1, 3, 1 / 81.0 / 2),
               (3, 1, 1 / 144.0 / sqrt(3)), (2, 3, 1 / 36.0 / 2), (3, 2, 1 / 144.0 / sqrt(2))) w(i, j, want)
    ON w.i = m.item_id AND w.j = m.neighbor_id
 ORDER BY 1, 3;
-- the defaults (α = 1, β = 1/2): W[2][1] = (1/2) / √3, W[1][2] = (1/3) / √2, ...; NULL means them too
SELECT item_id, neighbor_id, round(similarity::numeric, 12) AS similarity, rank
  FROM media_reco.item_similarity('r1', weight_col => 'w', metric => 'rp3beta') ORDER BY 1, 4;
SELECT round((1 / 2.0 / sqrt(3))::numeric, 12) AS w21, round((1 / 3.0 / sqrt(2))::numeric, 12) AS w12;
SELECT count(*) AS differing FROM (
  (SELECT * FROM media_reco.item_similarity('r1', weight_col => 'w', metric => 'rp3beta')
   EXCEPT SELECT * FROM media_reco.item_similarity('r1', weight_col => 'w', metric => 'rp3beta',
                                                   rp3_alpha => NULL, rp3_beta => NULL))
  UNION ALL
  (SELECT * FROM media_reco.item_similarity('r1', weight_col => 'w', metric => 'rp3beta')
   EXCEPT SELECT * FROM media_reco.item_similarity('r1', weight_col => 'w', metric => 'rp3beta',
                                                   rp3_alpha => 1, rp3_beta => 0.5))) d;

-- 2. Unweighted (1 per row, duplicates summed, NULL rows ignored), α = 1, β = 1/2:
--    users 1: {1,2}  2: {1,3}  3: {2,3}  4: {1,2,3};  s = 3 for every item, t = 2, 2, 2, 3
--    W[i][j] = ((1/3)(1/2) + (1/3)(1/3)) / √3 = (5/18) / √3 for every pair: ties, by smaller id.
--    k = 1 keeps the smaller id; shrinkage 2 with support 2 halves every value; min_support 3: none
CREATE TABLE r2 (user_id int, item_id int);
INSERT INTO r2 VALUES (4, 3), (4, 2), (4, 1), (3, 3), (3, 2), (2, 3), (2, 1), (1, 2), (1, 1), (NULL, 1), (1, NULL);
SELECT item_id, neighbor_id, round(similarity::numeric, 12) AS similarity, support, rank
  FROM media_reco.item_similarity('r2', metric => 'rp3beta');
SELECT round((5 / 18.0 / sqrt(3))::numeric, 12) AS want;
SELECT count(DISTINCT similarity) AS distinct_values FROM media_reco.item_similarity('r2', metric => 'rp3beta');
SELECT item_id, neighbor_id, rank FROM media_reco.item_similarity('r2', metric => 'rp3beta', k => 1);
SELECT item_id, neighbor_id, round(similarity::numeric, 12) AS similarity, rank
  FROM media_reco.item_similarity('r2', metric => 'rp3beta', shrinkage => 2) WHERE item_id = 1;
SELECT count(*) AS pairs_support_3 FROM media_reco.item_similarity('r2', metric => 'rp3beta', min_support => 3);
-- duplicates are summed: a second row of (4, 3) makes w(4,3) = 2, s(3) = 4, t(4) = 4:
-- W[1][3] = ((1/3)(1/2) + (1/3)(2/4)) / √4 = (1/3) / 2 = 1/6
INSERT INTO r2 VALUES (4, 3);
SELECT round(similarity::numeric, 12) AS similarity, round(1 / 6.0, 12) AS want
  FROM media_reco.item_similarity('r2', metric => 'rp3beta') WHERE item_id = 1 AND neighbor_id = 3;

-- 3. One item: no pairs.  One user with three items (α = 1, β = 1/2): s = 1, t = 3, so
--    W[i][j] = 1 · (1/3) / 1 = 1/3 for every pair.  Empty and all-unusable sources: no rows.
--    A zero weight contributes nothing but is still a shared user (support).
CREATE TABLE r3 (user_id int, item_id int, w float8);
INSERT INTO r3 VALUES (1, 5, 1), (2, 5, 1);
SELECT count(*) AS single_item FROM media_reco.item_similarity('r3', metric => 'rp3beta');
TRUNCATE r3;
INSERT INTO r3 VALUES (1, 5, 1), (1, 6, 1), (1, 7, 1);
SELECT item_id, neighbor_id, similarity, support, rank FROM media_reco.item_similarity('r3', metric => 'rp3beta');
TRUNCATE r3;
SELECT count(*) AS empty FROM media_reco.item_similarity('r3', metric => 'rp3beta');
INSERT INTO r3 VALUES (NULL, 1, 1), (1, NULL, 1), (1, 1, NULL), (1, 2, NULL);
SELECT count(*) AS unusable FROM media_reco.item_similarity('r3', weight_col => 'w', metric => 'rp3beta');
TRUNCATE r3;
-- user 1: items 1 (w 1), 2 (w 0); user 2: items 1 (w 1), 2 (w 1).  s(1) = 2, s(2) = 1, t(1) = 1, t(2) = 2:
-- W[1][2] = (1/2)(0/1) + (1/2)(1/2) = 1/4 (β = 0),  W[2][1] = (0/1)(1/1) + (1/1)(1/2) = 1/2; support 2
INSERT INTO r3 VALUES (1, 1, 1), (1, 2, 0), (2, 1, 1), (2, 2, 1);
SELECT item_id, neighbor_id, similarity, support FROM media_reco.item_similarity('r3', weight_col => 'w', metric => 'rp3beta', rp3_beta => 0);

-- 4. Time decay through a recommender (half life 24 hours, exact ages within one transaction):
--    user 1 saw items 1 and 2 now (w 1), user 2 saw item 1 24 hours ago (w 1/2) and item 2 now (w 1).
--    s(1) = 3/2, s(2) = 2, t(1) = 2, t(2) = 3/2;  α = 1, β = 1:
--    W[1][2] = ((1/(3/2))(1/2) + ((1/2)/(3/2))(1/(3/2))) / 2 = (1/3 + 2/9) / 2 = 5/18
--    W[2][1] = ((1/2)(1/2) + (1/2)((1/2)/(3/2))) / (3/2) = (1/4 + 1/6) / (3/2) = 5/18
BEGIN;
CREATE TABLE r4 (user_id int, item_id int, seen_at timestamptz);
INSERT INTO r4 VALUES (1, 1, now()), (1, 2, now()), (2, 1, now() - interval '24 hours'), (2, 2, now());
SELECT media_reco.create_recommender('rp3_decay', 'r4', metric => 'rp3beta', rp3_beta => 1,
                                     time_col => 'seen_at', half_life => '24 hours');
SELECT items, pairs FROM media_reco.refresh_neighbors('rp3_decay');
SELECT item_id, neighbor_id, abs(similarity - 5 / 18.0) < 1e-14 AS as_by_hand, support, rank
  FROM media_reco.item_neighbors WHERE recommender = 'rp3_decay' ORDER BY 1, rank;
COMMIT;
SELECT media_reco.drop_recommender('rp3_decay');

-- ---------------------------------------------------------------------------
-- 5. Against the definition in plain SQL (joins, sums, powers) on a generated table
CREATE TABLE rref AS
SELECT user_id, item_id,
       CASE WHEN (user_id + item_id) % 17 = 0 THEN NULL
            ELSE rating + ((user_id * 7 + item_id * 13) % 97) / 100.0 END AS wr
  FROM media_reco.synthetic_interactions(800, 300, 12000, 17);
INSERT INTO rref VALUES (NULL, 1, 3), (1, NULL, 3);   -- ignored rows
SELECT count(*) AS rows, count(DISTINCT item_id) AS items, count(DISTINCT (user_id, item_id)) AS distinct_pairs FROM rref;

CREATE FUNCTION ref_rp3(use_weight bool, alpha float8, beta float8, k int, min_support int, shrink float8)
RETURNS TABLE(item_id bigint, neighbor_id bigint, similarity float8, support bigint, rank bigint)
LANGUAGE sql AS $$
  WITH w AS (
    SELECT user_id AS u, item_id AS i, CASE WHEN use_weight THEN sum(wr) ELSE count(*) END::float8 AS w
      FROM rref
     WHERE user_id IS NOT NULL AND item_id IS NOT NULL AND (NOT use_weight OR wr IS NOT NULL)
     GROUP BY 1, 2),
  s AS (SELECT i, sum(w) AS s FROM w GROUP BY i),
  t AS (SELECT u, sum(w) AS t FROM w GROUP BY u),
  pr AS (SELECT w.u, w.i, power(w.w / s.s, alpha) AS from_i, power(w.w / t.t, alpha) AS to_j
           FROM w JOIN s USING (i) JOIN t USING (u)),
  pair AS (SELECT a.i, b.i AS j, sum(a.from_i * b.to_j) AS walk, count(*) AS sup
             FROM pr a JOIN pr b ON a.u = b.u AND a.i <> b.i GROUP BY 1, 2),
  sim AS (SELECT pair.i, pair.j, pair.walk / power(s.s, beta) * pair.sup / (pair.sup + shrink) AS sim, pair.sup
            FROM pair JOIN s ON s.i = pair.j WHERE pair.sup >= min_support),
  r AS (SELECT *, row_number() OVER (PARTITION BY i ORDER BY sim DESC, j) AS rk FROM sim WHERE sim > 0)
  SELECT i, j, sim, sup, rk FROM r WHERE rk <= k
$$;

-- per-item counts, each chosen pair's value (1e-9 relative: only the order of the sums differs)
-- and support, the ids in rank order (a swap only between values equal to 1e-9 relative)
CREATE FUNCTION rp3_compare(use_weight bool, alpha float8, beta float8, k int, min_support int, shrink float8)
RETURNS TABLE(rows bigint, ref_rows bigint, count_mismatch bigint, value_mismatch bigint, order_mismatch bigint)
LANGUAGE sql AS $$
  WITH mine AS (
    SELECT * FROM media_reco.item_similarity('rref', weight_col => CASE WHEN use_weight THEN 'wr' END::name,
                    metric => 'rp3beta', k => k, min_support => min_support, shrinkage => shrink,
                    rp3_alpha => alpha, rp3_beta => beta)),
  ref AS (SELECT * FROM ref_rp3(use_weight, alpha, beta, k, min_support, shrink)),
  full_ref AS (SELECT * FROM ref_rp3(use_weight, alpha, beta, 1000000, min_support, shrink)),
  counts AS (
    SELECT coalesce(a.item_id, b.item_id) AS item_id, a.c AS mine, b.c AS ref
      FROM (SELECT item_id, count(*) c FROM mine GROUP BY 1) a
      FULL JOIN (SELECT item_id, count(*) c FROM ref GROUP BY 1) b USING (item_id)),
  by_pair AS (
    SELECT m.*, f.similarity AS ref_sim, f.support AS ref_sup
      FROM mine m LEFT JOIN full_ref f ON f.item_id = m.item_id AND f.neighbor_id = m.neighbor_id)
  SELECT (SELECT count(*) FROM mine), (SELECT count(*) FROM ref),
         (SELECT count(*) FROM counts WHERE mine IS DISTINCT FROM ref),
         (SELECT count(*) FROM by_pair
           WHERE ref_sim IS NULL OR abs(similarity - ref_sim) > 1e-9 * ref_sim OR support <> ref_sup),
         (SELECT count(*) FROM by_pair m JOIN ref r ON r.item_id = m.item_id AND r.rank = m.rank
           WHERE m.neighbor_id <> r.neighbor_id
             AND NOT abs(m.ref_sim - r.similarity) <= 1e-9 * r.similarity)
$$;

SELECT c.label AS "case", r.rows > 0 AS has_rows, r.rows = r.ref_rows AS same_rows, r.count_mismatch,
       r.value_mismatch, r.order_mismatch
  FROM (VALUES
          (1, 'α 1, β 0.5 (defaults), counts, k 10', false, 1.0, 0.5, 10, 1, 0),
          (2, 'α 1, β 0.5, weights, k 10', true, 1.0, 0.5, 10, 1, 0),
          (3, 'α 0.5, β 0, counts, k 5, support 2, shrinkage 3', false, 0.5, 0, 5, 2, 3),
          (4, 'α 2, β 1, weights, k 20, support 3', true, 2.0, 1.0, 20, 3, 0),
          (5, 'α 0.8, β 0.3, weights, k 300 (all), shrinkage 1.5', true, 0.8, 0.3, 300, 1, 1.5),
          (6, 'α 1.5, β 0.7, counts, k 1', false, 1.5, 0.7, 1, 1, 0)
       ) c(ord, label, use_weight, alpha, beta, k, min_support, shrink),
       LATERAL rp3_compare(c.use_weight, c.alpha::float8, c.beta::float8, c.k, c.min_support, c.shrink::float8) r
 ORDER BY c.ord;

-- β penalises popular targets: with β = 1 the first neighbours are less popular than with β = 0
WITH pop AS (SELECT item_id, count(DISTINCT user_id) AS users FROM rref GROUP BY 1)
SELECT (SELECT avg(p.users) FROM media_reco.item_similarity('rref', metric => 'rp3beta', rp3_beta => 1, k => 1) s
          JOIN pop p ON p.item_id = s.neighbor_id)
     < (SELECT avg(p.users) FROM media_reco.item_similarity('rref', metric => 'rp3beta', rp3_beta => 0, k => 1) s
          JOIN pop p ON p.item_id = s.neighbor_id) AS beta_penalises_popularity;

-- ---------------------------------------------------------------------------
-- 6. A recommender: its refresh stores exactly item_similarity's lists and records the options
--    in effect; the serving functions against brute-force SQL over the stored lists
SELECT * FROM media_reco.split_interactions('rref', 'rtrain', 'rtest', test_fraction => 0.2, seed => 5);
CREATE INDEX ON rtrain (user_id, item_id) INCLUDE (wr);
SELECT media_reco.create_recommender('rp3_w', 'rtrain', weight_col => 'wr', metric => 'rp3beta', k => 30,
                                     rp3_alpha => 0.9, rp3_beta => 0.4);
SELECT media_reco.create_recommender('rp3_c', 'rtrain', metric => 'rp3beta', k => 20, min_support => 2);
SELECT name, metric, ease_lambda, rp3_alpha, rp3_beta, ease_max_items FROM media_reco.recommenders
 WHERE name LIKE 'rp3_%' ORDER BY name;
SELECT items, pairs > 0 AS has_pairs FROM media_reco.refresh_neighbors('rp3_w');
SELECT items, pairs > 0 AS has_pairs FROM media_reco.refresh_neighbors('rp3_c');
SELECT count(*) AS differing FROM (
  (SELECT item_id, neighbor_id, similarity, support, rank FROM media_reco.item_neighbors WHERE recommender = 'rp3_w'
   EXCEPT SELECT * FROM media_reco.item_similarity('rtrain', weight_col => 'wr', metric => 'rp3beta', k => 30,
                                                   rp3_alpha => 0.9, rp3_beta => 0.4))
  UNION ALL
  (SELECT * FROM media_reco.item_similarity('rtrain', weight_col => 'wr', metric => 'rp3beta', k => 30,
                                            rp3_alpha => 0.9, rp3_beta => 0.4)
   EXCEPT SELECT item_id, neighbor_id, similarity, support, rank FROM media_reco.item_neighbors WHERE recommender = 'rp3_w')) d;
SELECT recommender, parameters->>'metric' AS metric, parameters->'rp3_alpha' AS rp3_alpha,
       parameters->'rp3_beta' AS rp3_beta, parameters->'ease_lambda' AS ease_lambda,
       parameters ? 'phases' AS has_phases
  FROM media_reco.refresh_history WHERE recommender LIKE 'rp3_%' ORDER BY recommender;
CREATE VIEW rhist AS
SELECT user_id::int8 AS u, item_id::int8 AS i, sum(wr) AS w FROM rtrain
 WHERE user_id IS NOT NULL AND item_id IS NOT NULL AND wr IS NOT NULL GROUP BY 1, 2;
CREATE VIEW rhist_c AS
SELECT user_id::int8 AS u, item_id::int8 AS i, count(*)::float8 AS w FROM rtrain
 WHERE user_id IS NOT NULL AND item_id IS NOT NULL GROUP BY 1, 2;
SELECT * FROM pg_temp.check_serving('rp3_w', 'rhist', 'rtest', 10);
SELECT * FROM pg_temp.check_serving('rp3_c', 'rhist_c', 'rtest', 5);

-- ---------------------------------------------------------------------------
-- 7. Errors
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.item_similarity('r2', metric => 'rp3beta', rp3_alpha => 0)$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.item_similarity('r2', metric => 'rp3beta', rp3_alpha => -2)$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.item_similarity('r2', metric => 'rp3beta', rp3_alpha => 'NaN')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.item_similarity('r2', metric => 'rp3beta', rp3_alpha => 'Infinity')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.item_similarity('r2', metric => 'rp3beta', rp3_beta => -0.01)$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.item_similarity('r2', metric => 'rp3beta', rp3_beta => 'NaN')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.item_similarity('r2', metric => 'rp3beta', rp3_beta => 'Infinity')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.item_similarity('r2', metric => 'rp3beta', ease_lambda => 0)$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.item_similarity('r2', metric => 'bm25', rp3_alpha => 0)$$);
SELECT pg_temp.expect_error($$SELECT media_reco.create_recommender('bad', 'r2', metric => 'rp3beta', rp3_alpha => 0)$$);
SELECT pg_temp.expect_error($$SELECT media_reco.create_recommender('bad', 'r2', metric => 'rp3beta', rp3_beta => -1)$$);
SELECT pg_temp.expect_error($$SELECT media_reco.create_recommender('bad', 'r2', metric => 'jaccard', rp3_beta => 'Infinity')$$);
SELECT count(*) AS registered FROM media_reco.recommenders WHERE name = 'bad';
-- options of another metric are checked and ignored
SELECT count(*) AS differing FROM (
  (SELECT * FROM media_reco.item_similarity('rref', metric => 'rp3beta', k => 5) EXCEPT
   SELECT * FROM media_reco.item_similarity('rref', metric => 'rp3beta', k => 5, ease_lambda => 7, ease_max_items => 3,
                                            bm25_k1 => 2, bm25_b => 0.1))
  UNION ALL
  (SELECT * FROM media_reco.item_similarity('rref', metric => 'jaccard', k => 5) EXCEPT
   SELECT * FROM media_reco.item_similarity('rref', metric => 'jaccard', k => 5, rp3_alpha => 3, rp3_beta => 2))) d;
-- negative weights: RP3beta reads weights as transition probabilities (22003, from the core)
CREATE TABLE rneg (user_id int, item_id int, w float8);
INSERT INTO rneg VALUES (1, 1, 1), (1, 2, -0.5), (2, 1, 1);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.item_similarity('rneg', weight_col => 'w', metric => 'rp3beta')$$);
SELECT * FROM media_reco.item_similarity('rneg', weight_col => 'w', metric => 'rp3beta');
-- a total weight too small to divide by under a large β: 22003 naming the item
CREATE TABLE rtiny (user_id int, item_id int, w float8);
INSERT INTO rtiny VALUES (1, 1, 1), (1, 2, 1e-300), (2, 1, 1);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.item_similarity('rtiny', weight_col => 'w', metric => 'rp3beta', rp3_beta => 2)$$);
-- user-based CF has no RP3beta counterpart: 0A000, as for bm25
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.similar_users('rp3_c', 1)$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.recommend_user_based('rp3_c', 1)$$);

-- ---------------------------------------------------------------------------
-- 8. The stored lists depend neither on media_reco.threads nor on the physical row order
CREATE TABLE rt AS SELECT user_id, item_id, plays FROM media_reco.synthetic_interactions(3000, 800, 40000, 9);
SELECT * FROM pg_temp.check_order_independence('rt', $$media_reco.item_similarity(%s, weight_col => 'plays', metric => 'rp3beta', k => 30, rp3_alpha => 0.7)$$);

SELECT media_reco.drop_recommender('rp3_w'), media_reco.drop_recommender('rp3_c');
RESET search_path;
DROP SCHEMA rp3beta_test CASCADE;
