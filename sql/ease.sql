-- EASE (metric => 'ease', Steck 2019): G = XᵀX over the items, P = (G + λI)⁻¹,
-- B[i][j] = −P[i][j] / P[j][j]; i's neighbours are its k largest B[i][j] > 0 with support >=
-- min_support, times support / (support + shrinkage), ties by smaller j.
-- Hand-checked tiny cases; the definition against a PL/pgSQL Gauss-Jordan inverse on a generated
-- table of 200 items (several λ, k, shrinkage, min_support, weights, ease_max_items); the serving
-- functions against brute-force SQL; the refresh; every error branch; thread-count and row-order
-- independence.
\i test/sql/expect_error.sql
\i test/sql/learned_serving.sql
\i test/sql/order_independence.sql
CREATE SCHEMA ease_test;
SET search_path = ease_test, public;
SET client_min_messages = warning;
-- an error's SQLSTATE, message, detail and hint as columns (expect_error leaves out the hint)
CREATE FUNCTION pg_temp.error_of(stmt text) RETURNS TABLE(code text, msg text, det text, hnt text)
LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE stmt;
  code := 'no error';
  RETURN NEXT;
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS code = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL,
                          hnt = PG_EXCEPTION_HINT;
  RETURN NEXT;
END
$$;

-- ---------------------------------------------------------------------------
-- 1. Three items, every pair shared by two users, unweighted, λ = 1:
--    users 1: {1,2}  2: {1,3}  3: {2,3}  4: {1,2,3}
--    G = [3 2 2; 2 3 2; 2 2 3],  G + λI = [4 2 2; 2 4 2; 2 2 4] = 2I + 2J  (J: all ones)
--    (cI + dJ)⁻¹ = (I − d/(c + 3d)·J) / c,  so  P = I/2 − J/8 = [3/8 −1/8 −1/8; −1/8 3/8 −1/8; −1/8 −1/8 3/8]
--    B[i][j] = −P[i][j] / P[j][j] = (1/8) / (3/8) = 1/3 for every i ≠ j; support 2 for every pair
CREATE TABLE h1 (user_id int, item_id int);
INSERT INTO h1 VALUES (1, 1), (1, 2), (2, 1), (2, 3), (3, 2), (3, 3), (4, 1), (4, 2), (4, 3);
SELECT item_id, neighbor_id, round(similarity::numeric, 12) AS similarity, support
  FROM media_reco.item_similarity('h1', metric => 'ease', ease_lambda => 1) ORDER BY 1, 2;

-- 2. An exact tie, and a shared pair with B = 0 (unweighted, λ = 1, items 10, 20, 30, rows
--    inserted out of order):
--    users 1: {10,20,30}  2: {10,20}  3: {10,30}  4, 5: {20}  6, 7: {30}
--    G = [3 2 2; 2 4 1; 2 1 4],  G + λI = [4 2 2; 2 5 1; 2 1 5] = L Lᵀ with L = [2 0 0; 1 2 0; 1 0 2],
--    so every step of the factor and of the inverse is exact in binary;  det = 64,
--    P = [24 −8 −8; −8 16 0; −8 0 16] / 64 = [3/8 −1/8 −1/8; −1/8 1/4 0; −1/8 0 1/4]
--    B[10][20] = B[10][30] = (1/8) / (1/4) = 1/2 exactly: a tie, so 20 ranks first (and k = 1 keeps it);
--    B[20][10] = B[30][10] = (1/8) / (3/8) = 1/3;
--    B[20][30] = B[30][20] = −0 / (1/4): not neighbours, although user 1 has both
CREATE TABLE h2 (user_id int, item_id int);
INSERT INTO h2 VALUES (7, 30), (6, 30), (3, 30), (1, 30), (5, 20), (4, 20), (2, 20), (1, 20), (3, 10), (2, 10), (1, 10);
SELECT * FROM media_reco.item_similarity('h2', metric => 'ease', ease_lambda => 1);
SELECT * FROM media_reco.item_similarity('h2', metric => 'ease', ease_lambda => 1, k => 1);
-- shrinkage 2: B · support / (support + 2): (10,20) and (10,30) have support 2, so 1/2 · 1/2 = 1/4,
-- and 1/3 · 1/2 = 1/6 the other way; min_support 2 keeps them all, 3 none
SELECT item_id, neighbor_id, round(similarity::numeric, 12) AS similarity, support, rank
  FROM media_reco.item_similarity('h2', metric => 'ease', ease_lambda => 1, shrinkage => 2);
SELECT count(*) AS pairs_support_2 FROM media_reco.item_similarity('h2', metric => 'ease', ease_lambda => 1, min_support => 2);
SELECT count(*) AS pairs_support_3 FROM media_reco.item_similarity('h2', metric => 'ease', ease_lambda => 1, min_support => 3);

-- 3. Weights: user 1 has item 1 (w 1) and item 2 (w 1.5 + 0.5, two rows summed), user 2 item 1
--    (w 3); user 3's row has a NULL weight and the rows with a NULL user or item never count.
--    Weighted, λ = 2:  G = [1 + 9, 1·2; 2, 4] = [10 2; 2 4],  G + 2I = [12 2; 2 6],  det = 68,
--    P = [6 −2; −2 12] / 68:  B[1][2] = (2/68) / (12/68) = 1/6,  B[2][1] = (2/68) / (6/68) = 1/3
--    Unweighted (1 per row: w(1,2) = 2, and user 3 counts):  G = [3 2; 2 4],  G + 2I = [5 2; 2 6],
--    det = 26,  P = [6 −2; −2 5] / 26:  B[1][2] = 2/5,  B[2][1] = 2/6 = 1/3
CREATE TABLE h3 (user_id int, item_id int, w float8);
INSERT INTO h3 VALUES (1, 1, 1), (1, 2, 1.5), (1, 2, 0.5), (2, 1, 3), (3, 1, NULL), (NULL, 2, 1), (2, NULL, 1);
SELECT item_id, neighbor_id, round(similarity::numeric, 12) AS similarity, support, rank
  FROM media_reco.item_similarity('h3', weight_col => 'w', metric => 'ease', ease_lambda => 2);
SELECT round(1 / 6.0, 12) AS want_1_2, round(1 / 3.0, 12) AS want_2_1;
SELECT item_id, neighbor_id, round(similarity::numeric, 12) AS similarity, support, rank
  FROM media_reco.item_similarity('h3', metric => 'ease', ease_lambda => 2);
-- weights doubled and λ quadrupled scale G + λI by 4 exactly in binary: the same B, bit for bit
CREATE TABLE h3x AS SELECT user_id, item_id, 2 * w AS w FROM h3;
SELECT count(*) AS differing FROM (
  (SELECT * FROM media_reco.item_similarity('h3', weight_col => 'w', metric => 'ease', ease_lambda => 2)
   EXCEPT SELECT * FROM media_reco.item_similarity('h3x', weight_col => 'w', metric => 'ease', ease_lambda => 8))
  UNION ALL
  (SELECT * FROM media_reco.item_similarity('h3x', weight_col => 'w', metric => 'ease', ease_lambda => 8)
   EXCEPT SELECT * FROM media_reco.item_similarity('h3', weight_col => 'w', metric => 'ease', ease_lambda => 2))) d;

-- 4. One item: no pairs.  One user with three items, λ = 2:  G = J,  P = (I − J/(λ + 3)) / λ,
--    B[i][j] = (1/(λ(λ+3))) / ((λ+2)/(λ(λ+3))) = 1/(λ + 2) = 1/4 for every pair.
--    An empty source, and one whose rows are all unusable: no rows, no error.
CREATE TABLE h4 (user_id int, item_id int, w float8);
INSERT INTO h4 VALUES (1, 5, 1), (2, 5, 1), (2, 5, 1);
SELECT count(*) AS single_item FROM media_reco.item_similarity('h4', metric => 'ease');
TRUNCATE h4;
INSERT INTO h4 VALUES (1, 5, 1), (1, 6, 1), (1, 7, 1);
SELECT item_id, neighbor_id, round(similarity::numeric, 12) AS similarity, support
  FROM media_reco.item_similarity('h4', metric => 'ease', ease_lambda => 2) ORDER BY 1, 2;
TRUNCATE h4;
SELECT count(*) AS empty FROM media_reco.item_similarity('h4', metric => 'ease');
INSERT INTO h4 VALUES (NULL, 1, 1), (1, NULL, 1), (1, 1, NULL), (1, 2, NULL);
SELECT count(*) AS unusable FROM media_reco.item_similarity('h4', weight_col => 'w', metric => 'ease');

-- 5. Time decay through a recommender (half life 24 hours, ages from the refresh's now(), so in
--    one transaction the ages are exact): user 1 saw items 1 and 2 now (w 1 each), user 2 saw
--    item 1 24 hours ago (w 1/2).  λ = 1:  G = [1 + 1/4, 1; 1, 1],  G + λI = [9/4 1; 1 2],
--    det = 7/2,  P = [2 −1; −1 9/4] / (7/2):  B[1][2] = 1 / (9/4) = 4/9,  B[2][1] = 1/2
BEGIN;
CREATE TABLE h5 (user_id int, item_id int, seen_at timestamptz);
INSERT INTO h5 VALUES (1, 1, now()), (1, 2, now()), (2, 1, now() - interval '24 hours');
SELECT media_reco.create_recommender('ease_decay', 'h5', metric => 'ease', ease_lambda => 1,
                                     time_col => 'seen_at', half_life => '24 hours');
SELECT items, pairs FROM media_reco.refresh_neighbors('ease_decay');
SELECT item_id, neighbor_id, round(similarity::numeric, 12) AS similarity, support, rank
  FROM media_reco.item_neighbors WHERE recommender = 'ease_decay' ORDER BY 1, rank;
SELECT round(4 / 9.0, 12) AS want_1_2;
COMMIT;
SELECT media_reco.drop_recommender('ease_decay');

-- ---------------------------------------------------------------------------
-- 6. Against the definition on a generated table of 200 items: w(u,i) and G in SQL, P by an
--    in-place Gauss-Jordan inverse in PL/pgSQL (G + λI is symmetric positive definite, so no
--    pivoting is needed), then B, support, min_support, shrinkage and the top k in SQL.
CREATE TABLE eref AS
SELECT user_id, item_id,
       CASE WHEN (user_id + item_id) % 19 = 0 THEN NULL
            ELSE rating + ((user_id * 7 + item_id * 13) % 97) / 100.0 END AS wr
  FROM media_reco.synthetic_interactions(600, 200, 9000, 13);
INSERT INTO eref VALUES (NULL, 1, 3), (1, NULL, 3);   -- ignored rows
SELECT count(*) AS rows, count(DISTINCT item_id) AS items, count(DISTINCT (user_id, item_id)) AS distinct_pairs FROM eref;

-- w(u,i): NULL rows ignored, duplicates summed, 1 per row without the weight column
CREATE FUNCTION ref_w(use_weight bool) RETURNS TABLE(u bigint, i bigint, w float8)
LANGUAGE sql AS $$
  SELECT user_id, item_id, CASE WHEN use_weight THEN sum(wr) ELSE count(*) END::float8
    FROM eref
   WHERE user_id IS NOT NULL AND item_id IS NOT NULL AND (NOT use_weight OR wr IS NOT NULL)
   GROUP BY 1, 2
$$;

-- the inverse of an n x n matrix held row-major in a flat array, in place
CREATE FUNCTION gj_inverse(a float8[], n int) RETURNS float8[] LANGUAGE plpgsql AS $$
DECLARE
  p float8;
  f float8;
  rk int;
  ri int;
BEGIN
  FOR k IN 1 .. n LOOP
    rk := (k - 1) * n;
    p := a[rk + k];
    a[rk + k] := 1;
    FOR j IN 1 .. n LOOP a[rk + j] := a[rk + j] / p; END LOOP;
    FOR i IN 1 .. n LOOP
      ri := (i - 1) * n;
      f := a[ri + k];
      IF i <> k AND f <> 0 THEN
        a[ri + k] := 0;
        FOR j IN 1 .. n LOOP a[ri + j] := a[ri + j] - f * a[rk + j]; END LOOP;
      END IF;
    END LOOP;
  END LOOP;
  RETURN a;
END
$$;
-- the inverse checked once: (G + λI) P = I on a small case
SELECT max(abs(s.v - CASE WHEN s.r = s.c THEN 1 ELSE 0 END)) < 1e-12 AS inverse_ok
  FROM (SELECT r, c, sum(a.x * b.x) AS v
          FROM (SELECT ARRAY[4, 2, 2, 2, 5, 1, 2, 1, 5]::float8[] AS m) m0,
               LATERAL (SELECT gj_inverse(m0.m, 3) AS p) p0,
               generate_series(1, 3) r, generate_series(1, 3) c, generate_series(1, 3) t,
               LATERAL (SELECT m0.m[(r - 1) * 3 + t] AS x) a,
               LATERAL (SELECT p0.p[(t - 1) * 3 + c] AS x) b
         GROUP BY r, c) s;

-- P = (G + λI)⁻¹ over the covered items: all, or the max_items with the most users (ties by id)
CREATE TABLE ref_p (case_id int, i bigint, j bigint, p float8, PRIMARY KEY (case_id, i, j));
CREATE FUNCTION ref_solve(case_id int, use_weight bool, lambda float8, max_items int) RETURNS bigint
LANGUAGE sql AS $$
  INSERT INTO ref_p
  WITH w AS (SELECT * FROM ref_w(use_weight)),
  items AS (SELECT i, row_number() OVER (ORDER BY i) AS ix
              FROM (SELECT i FROM w GROUP BY i ORDER BY count(*) DESC, i LIMIT max_items) x),
  g AS (SELECT a.i, b.i AS j, sum(a.w * b.w) AS g
          FROM w a JOIN w b ON a.u = b.u
         WHERE a.i IN (SELECT i FROM items) AND b.i IN (SELECT i FROM items) GROUP BY 1, 2),
  m AS (SELECT gj_inverse(array_agg(coalesce(g.g, 0) + CASE WHEN x.i = y.i THEN lambda ELSE 0 END
                                    ORDER BY x.ix, y.ix),
                          (SELECT count(*) FROM items)::int) AS a,
               (SELECT count(*) FROM items)::int AS n
          FROM items x CROSS JOIN items y LEFT JOIN g ON g.i = x.i AND g.j = y.i)
  SELECT case_id, x.i, y.i, e.p
    FROM m CROSS JOIN LATERAL unnest(m.a) WITH ORDINALITY AS e(p, ord)
    JOIN items x ON x.ix = (e.ord - 1) / m.n + 1
    JOIN items y ON y.ix = (e.ord - 1) % m.n + 1;
  SELECT count(*) FROM ref_p WHERE ref_p.case_id = ref_solve.case_id
$$;

-- support: the users with both items, over the usable rows
CREATE TABLE ref_sup AS
SELECT uw, a.i, b.i AS j, count(*) AS s
  FROM (VALUES (false), (true)) v(uw), ref_w(uw) a JOIN ref_w(uw) b ON a.u = b.u AND a.i <> b.i
 GROUP BY 1, 2, 3;

-- B from P, with support, min_support and shrinkage
CREATE FUNCTION ref_ease(case_id int, use_weight bool, k int, min_support int, shrink float8)
RETURNS TABLE(item_id bigint, neighbor_id bigint, similarity float8, support bigint, rank bigint)
LANGUAGE sql AS $$
  WITH b AS (
    SELECT p.i, p.j, -p.p / d.p * sup.s / (sup.s + shrink) AS sim, sup.s
      FROM ref_p p
      JOIN ref_p d ON d.case_id = p.case_id AND d.i = p.j AND d.j = p.j
      JOIN ref_sup sup ON sup.uw = use_weight AND sup.i = p.i AND sup.j = p.j
     WHERE p.case_id = ref_ease.case_id AND sup.s >= min_support),
  r AS (SELECT *, row_number() OVER (PARTITION BY i ORDER BY sim DESC, j) AS rk FROM b WHERE sim > 0)
  SELECT i, j, sim, s, rk FROM r WHERE rk <= k
$$;

-- the checks of every case: per-item counts, each chosen pair's value (1e-6 relative, the
-- contract; the largest error is reported against 1e-9 too) and support, the ids in rank order
-- (a swap only between values equal to 1e-9 relative)
CREATE FUNCTION ease_compare(case_id int, use_weight bool, lambda float8, k int, min_support int,
                             shrink float8, max_items int)
RETURNS TABLE(rows bigint, ref_rows bigint, count_mismatch bigint, value_mismatch bigint,
              within_1e9 bool, order_mismatch bigint)
LANGUAGE sql AS $$
  WITH mine AS (
    SELECT * FROM media_reco.item_similarity('eref', weight_col => CASE WHEN use_weight THEN 'wr' END::name,
                    metric => 'ease', k => k, min_support => min_support, shrinkage => shrink,
                    ease_lambda => lambda, ease_max_items => max_items)),
  ref AS (SELECT * FROM ref_ease(case_id, use_weight, k, min_support, shrink)),
  full_ref AS (SELECT * FROM ref_ease(case_id, use_weight, 1000000, min_support, shrink)),
  counts AS (
    SELECT coalesce(a.item_id, b.item_id) AS item_id, a.c AS mine, b.c AS ref
      FROM (SELECT item_id, count(*) c FROM mine GROUP BY 1) a
      FULL JOIN (SELECT item_id, count(*) c FROM ref GROUP BY 1) b USING (item_id)),
  by_pair AS (
    SELECT m.*, f.similarity AS ref_sim, f.support AS ref_sup,
           abs(m.similarity - f.similarity) / abs(f.similarity) AS rel
      FROM mine m LEFT JOIN full_ref f ON f.item_id = m.item_id AND f.neighbor_id = m.neighbor_id)
  SELECT (SELECT count(*) FROM mine), (SELECT count(*) FROM ref),
         (SELECT count(*) FROM counts WHERE mine IS DISTINCT FROM ref),
         (SELECT count(*) FROM by_pair WHERE ref_sim IS NULL OR rel > 1e-6 OR support <> ref_sup),
         (SELECT coalesce(max(rel), 0) < 1e-9 FROM by_pair),
         (SELECT count(*) FROM by_pair m JOIN ref r ON r.item_id = m.item_id AND r.rank = m.rank
           WHERE m.neighbor_id <> r.neighbor_id
             AND NOT abs(m.ref_sim - r.similarity) <= 1e-9 * abs(r.similarity))
$$;

-- three inverses over all 200 items (the default λ = 250 unweighted, λ = 10 weighted, λ = 1
-- unweighted: the worst conditioned), one over the 60 most popular items (λ = 50)
SELECT ref_solve(1, false, 250, NULL) AS p_entries_1, ref_solve(2, true, 10, NULL) AS p_entries_2,
       ref_solve(3, false, 1, NULL) AS p_entries_3, ref_solve(4, false, 50, 60) AS p_entries_4;
-- items no user shares have P[i][j] ≠ 0 (the inverse couples them through others) but are never neighbours
SELECT count(*) > 0 AS unshared_pairs_with_weight
  FROM ref_p p WHERE p.case_id = 1 AND p.i <> p.j AND abs(p.p) > 1e-12
   AND NOT EXISTS (SELECT 1 FROM ref_sup s WHERE NOT s.uw AND s.i = p.i AND s.j = p.j);

SELECT c.label AS "case", r.rows > 0 AS has_rows, r.rows = r.ref_rows AS same_rows, r.count_mismatch,
       r.value_mismatch, r.within_1e9, r.order_mismatch
  FROM (VALUES
          (1, 'λ default (NULL = 250), counts, k 10', 1, false, NULL, 10, 1, 0, NULL),
          (2, 'λ 250, counts, k 5, support 2, shrinkage 3', 1, false, 250, 5, 2, 3, NULL),
          (3, 'λ 250, counts, k 200 (all)', 1, false, 250, 200, 1, 0, NULL),
          (4, 'λ 10, weights, k 10', 2, true, 10, 10, 1, 0, NULL),
          (5, 'λ 10, weights, k 20, support 3, shrinkage 5', 2, true, 10, 20, 3, 5, NULL),
          (6, 'λ 1, counts, k 10', 3, false, 1, 10, 1, 0, NULL),
          (7, 'λ 1, counts, k 3, shrinkage 0.5', 3, false, 1, 3, 1, 0.5, NULL),
          (8, 'λ 50, counts, 60 most popular items, k 10', 4, false, 50, 10, 1, 0, 60),
          (9, 'λ 50, counts, 60 most popular items, k 4, support 2, shrinkage 1', 4, false, 50, 4, 2, 1, 60)
       ) c(ord, label, case_id, use_weight, lambda, k, min_support, shrink, max_items),
       LATERAL ease_compare(c.case_id, c.use_weight, c.lambda::float8, c.k, c.min_support, c.shrink::float8,
                            c.max_items) r
 ORDER BY c.ord;

-- ease_max_items: only the 60 items with the most users (ties by smaller id) get lists, and only
-- among themselves; ease_max_items at or beyond the item count covers every item
SELECT count(DISTINCT item_id) AS items_with_lists,
       bool_and(item_id IN (SELECT i FROM ref_p WHERE case_id = 4)
                AND neighbor_id IN (SELECT i FROM ref_p WHERE case_id = 4)) AS only_covered
  FROM media_reco.item_similarity('eref', metric => 'ease', ease_lambda => 50, ease_max_items => 60);
-- at the cut the popularity ties, so the smaller ids are the ones covered
WITH pop AS (SELECT i, count(*) AS users, row_number() OVER (ORDER BY count(*) DESC, i) AS pos
               FROM ref_w(false) GROUP BY i),
mine AS (SELECT DISTINCT item_id FROM media_reco.item_similarity('eref', metric => 'ease', ease_lambda => 50,
                                                                   ease_max_items => 60))
SELECT pos, i AS item_id, users, i IN (SELECT item_id FROM mine) AS covered
  FROM pop WHERE users = (SELECT users FROM pop WHERE pos = 60) ORDER BY pos;
SELECT count(*) AS differing FROM (
  (SELECT * FROM media_reco.item_similarity('eref', metric => 'ease', ease_max_items => 200)
   EXCEPT SELECT * FROM media_reco.item_similarity('eref', metric => 'ease'))
  UNION ALL
  (SELECT * FROM media_reco.item_similarity('eref', metric => 'ease', ease_max_items => 1000000)
   EXCEPT SELECT * FROM media_reco.item_similarity('eref', metric => 'ease'))) d;
-- ease_max_items => 1: one item, no pairs
SELECT count(*) AS one_item FROM media_reco.item_similarity('eref', metric => 'ease', ease_max_items => 1);

-- ---------------------------------------------------------------------------
-- 7. A recommender: its refresh stores exactly item_similarity's lists, its history records the
--    options in effect, the phases and the dense matrix in the peak; the serving functions
--    against brute-force SQL over the stored lists
SELECT * FROM media_reco.split_interactions('eref', 'etrain', 'etest', test_fraction => 0.2, seed => 3);
CREATE INDEX ON etrain (user_id, item_id) INCLUDE (wr);
SELECT media_reco.create_recommender('ease_w', 'etrain', weight_col => 'wr', metric => 'ease', k => 20,
                                     ease_lambda => 10);
SELECT media_reco.create_recommender('ease_c', 'etrain', metric => 'ease', k => 20, shrinkage => 2);
SELECT name, metric, ease_lambda, rp3_alpha, rp3_beta, ease_max_items FROM media_reco.recommenders
 WHERE name LIKE 'ease_%' ORDER BY name;
SELECT items, pairs > 0 AS has_pairs FROM media_reco.refresh_neighbors('ease_w');
SELECT items, pairs > 0 AS has_pairs FROM media_reco.refresh_neighbors('ease_c');
SELECT count(*) AS differing FROM (
  (SELECT item_id, neighbor_id, similarity, support, rank FROM media_reco.item_neighbors WHERE recommender = 'ease_w'
   EXCEPT SELECT * FROM media_reco.item_similarity('etrain', weight_col => 'wr', metric => 'ease', k => 20, ease_lambda => 10))
  UNION ALL
  (SELECT * FROM media_reco.item_similarity('etrain', weight_col => 'wr', metric => 'ease', k => 20, ease_lambda => 10)
   EXCEPT SELECT item_id, neighbor_id, similarity, support, rank FROM media_reco.item_neighbors WHERE recommender = 'ease_w')) d;
SELECT recommender, parameters->>'metric' AS metric, parameters->'ease_lambda' AS ease_lambda,
       parameters->'ease_max_items' AS ease_max_items, parameters->'rp3_alpha' AS rp3_alpha,
       parameters->'rp3_beta' AS rp3_beta, parameters->'ease_items' AS ease_items,
       (SELECT array_agg(k ORDER BY k) FROM jsonb_object_keys(parameters->'phases') k) AS phases,
       (SELECT bool_and(v::float8 >= 0) FROM jsonb_each_text(parameters->'phases') e(k, v)) AS phase_seconds,
       peak_memory_bytes >= 8 * items * items AS peak_has_dense_matrix
  FROM media_reco.refresh_history WHERE recommender LIKE 'ease_%' ORDER BY recommender;
CREATE VIEW ehist AS
SELECT user_id::int8 AS u, item_id::int8 AS i, sum(wr) AS w FROM etrain
 WHERE user_id IS NOT NULL AND item_id IS NOT NULL AND wr IS NOT NULL GROUP BY 1, 2;
CREATE VIEW ehist_c AS
SELECT user_id::int8 AS u, item_id::int8 AS i, count(*)::float8 AS w FROM etrain
 WHERE user_id IS NOT NULL AND item_id IS NOT NULL GROUP BY 1, 2;
SELECT * FROM pg_temp.check_serving('ease_w', 'ehist', 'etest', 10);
SELECT * FROM pg_temp.check_serving('ease_c', 'ehist_c', 'etest', 5);

-- a later refresh over changed data replaces the lists (a failed one keeps them: section 8)
DELETE FROM etrain WHERE item_id % 2 = 0;
SELECT items FROM media_reco.refresh_neighbors('ease_w');
SELECT count(*) FILTER (WHERE item_id % 2 = 0 OR neighbor_id % 2 = 0) AS even_items_left
  FROM media_reco.item_neighbors WHERE recommender = 'ease_w';

-- ---------------------------------------------------------------------------
-- 8. Errors
-- out-of-range and non-finite options, each named (22023), whatever the metric
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.item_similarity('h1', metric => 'ease', ease_lambda => 0)$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.item_similarity('h1', metric => 'ease', ease_lambda => -1)$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.item_similarity('h1', metric => 'ease', ease_lambda => 'NaN')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.item_similarity('h1', metric => 'ease', ease_lambda => 'Infinity')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.item_similarity('h1', metric => 'ease', ease_max_items => 0)$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.item_similarity('h1', metric => 'ease', ease_max_items => -5)$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.item_similarity('h1', metric => 'ease', rp3_alpha => 0)$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.item_similarity('h1', metric => 'ease', rp3_beta => -1)$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.item_similarity('h1', metric => 'ease', bm25_b => 2)$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.item_similarity('h1', ease_lambda => '-Infinity')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.item_similarity('h1', metric => 'cosine', ease_max_items => 0)$$);
SELECT pg_temp.expect_error($$SELECT media_reco.create_recommender('bad', 'h1', metric => 'ease', ease_lambda => 0)$$);
SELECT pg_temp.expect_error($$SELECT media_reco.create_recommender('bad', 'h1', metric => 'ease', ease_max_items => 0)$$);
SELECT pg_temp.expect_error($$SELECT media_reco.create_recommender('bad', 'h1', ease_lambda => 'NaN')$$);
SELECT count(*) AS registered FROM media_reco.recommenders WHERE name = 'bad';
-- options of another metric are checked and ignored; NULL means the default
SELECT count(*) AS differing FROM (
  (SELECT * FROM media_reco.item_similarity('eref', k => 5) EXCEPT
   SELECT * FROM media_reco.item_similarity('eref', k => 5, ease_lambda => 3, ease_max_items => 2, rp3_alpha => 2, rp3_beta => 0))
  UNION ALL
  (SELECT * FROM media_reco.item_similarity('eref', metric => 'ease', k => 5) EXCEPT
   SELECT * FROM media_reco.item_similarity('eref', metric => 'ease', k => 5, rp3_alpha => 2, rp3_beta => 0, bm25_k1 => 1))
  UNION ALL
  (SELECT * FROM media_reco.item_similarity('eref', metric => 'ease', k => 5) EXCEPT
   SELECT * FROM media_reco.item_similarity('eref', metric => 'ease', k => 5, ease_lambda => NULL, ease_max_items => NULL))
  UNION ALL
  (SELECT * FROM media_reco.item_similarity('eref', metric => 'ease', k => 5) EXCEPT
   SELECT * FROM media_reco.item_similarity('eref', metric => 'ease', k => 5, ease_lambda => 250))) d;
-- the registry keeps what was given (NULL stays NULL) and its CHECKs hold the same rules
SELECT media_reco.create_recommender('ease_opts', 'h1', metric => 'cosine', ease_lambda => 3, rp3_beta => 0);
SELECT metric, ease_lambda, rp3_alpha, rp3_beta, ease_max_items FROM media_reco.recommenders WHERE name = 'ease_opts';
SELECT pg_temp.expect_error($$UPDATE media_reco.recommenders SET ease_lambda = 0 WHERE name = 'ease_opts'$$);
SELECT pg_temp.expect_error($$UPDATE media_reco.recommenders SET ease_lambda = 'NaN' WHERE name = 'ease_opts'$$);
SELECT pg_temp.expect_error($$UPDATE media_reco.recommenders SET rp3_alpha = 0 WHERE name = 'ease_opts'$$);
SELECT pg_temp.expect_error($$UPDATE media_reco.recommenders SET rp3_beta = -0.5 WHERE name = 'ease_opts'$$);
SELECT pg_temp.expect_error($$UPDATE media_reco.recommenders SET rp3_beta = 'Infinity' WHERE name = 'ease_opts'$$);
SELECT pg_temp.expect_error($$UPDATE media_reco.recommenders SET ease_max_items = 0 WHERE name = 'ease_opts'$$);
SELECT pg_temp.expect_error($$UPDATE media_reco.recommenders SET metric = 'ease2' WHERE name = 'ease_opts'$$);
UPDATE media_reco.recommenders SET metric = 'ease' WHERE name = 'ease_opts';
SELECT items, pairs FROM media_reco.refresh_neighbors('ease_opts');
SELECT parameters->'ease_lambda' AS ease_lambda, parameters->'rp3_beta' AS rp3_beta
  FROM media_reco.refresh_history WHERE recommender = 'ease_opts';
SELECT media_reco.drop_recommender('ease_opts');

-- the memory budget: 54000 stating the dense matrix's n x n x 8 bytes, with a hint naming a
-- maintenance_work_mem that fits and the largest ease_max_items that fits the current one; both
-- are taken from the hint and tried (the whole computation's estimate is left out of the
-- expected output: it is the core's, and depends on media_reco.threads)
CREATE TABLE ewide AS SELECT u AS user_id, i AS item_id FROM generate_series(1, 30) u, generate_series(1, 600) i
 WHERE (u * 31 + i * 17) % 5 <> 0;
SELECT media_reco.create_recommender('ease_big', 'ewide', metric => 'ease');
SELECT items, pairs > 0 AS has_pairs FROM media_reco.refresh_neighbors('ease_big');
CREATE TABLE ease_big_before AS SELECT * FROM media_reco.item_neighbors WHERE recommender = 'ease_big';
SET maintenance_work_mem = '2MB';
CREATE TABLE mem_err AS
SELECT 'item_similarity' AS via, * FROM pg_temp.error_of($$SELECT count(*) FROM media_reco.item_similarity('ewide', metric => 'ease')$$)
UNION ALL
SELECT 'refresh_neighbors', * FROM pg_temp.error_of($$SELECT * FROM media_reco.refresh_neighbors('ease_big')$$);
SELECT via, code, msg,
       det ~ '^Its dense matrix needs 600 x 600 x 8 = 2880000 bytes \(2\.7 MB\), the whole computation about [0-9.]+ MB; the limit is 2\.0 MB\.$'
         AS detail_states_the_matrix,
       regexp_replace(hnt, '[0-9]+', 'N', 'g') AS hint
  FROM mem_err ORDER BY via;
SELECT count(DISTINCT det) = 1 AND count(DISTINCT hnt) = 1 AS same_error_both_ways FROM mem_err;
-- the failed refresh left the stored lists as they were
SELECT count(*) AS kept,
       NOT EXISTS (SELECT * FROM media_reco.item_neighbors WHERE recommender = 'ease_big' EXCEPT SELECT * FROM ease_big_before)
       AND NOT EXISTS (SELECT * FROM ease_big_before EXCEPT SELECT * FROM media_reco.item_neighbors WHERE recommender = 'ease_big')
         AS intact
  FROM ease_big_before;
SELECT substring(hnt FROM 'at most ([0-9]+)')::int AS fit, substring(hnt FROM '''([0-9]+)MB''')::int AS mb,
       substring(hnt FROM '''([0-9]+MB)''') AS mbtext
  FROM mem_err WHERE via = 'refresh_neighbors' \gset
SELECT :fit BETWEEN 2 AND 599 AS fit_is_a_restriction, :mb > 2 AS mb_is_more;
SELECT count(DISTINCT item_id) = :fit AS hinted_ease_max_items_fits
  FROM media_reco.item_similarity('ewide', metric => 'ease', ease_max_items => :fit);
SELECT code, msg = format('ease over %s items does not fit in maintenance_work_mem', :fit + 1) AS one_more_does_not
  FROM pg_temp.error_of(format($$SELECT count(*) FROM media_reco.item_similarity('ewide', metric => 'ease', ease_max_items => %s)$$, :fit + 1));
-- the budget the hint names is enough, and gives the same lists
SET maintenance_work_mem = :'mbtext';
SELECT items, pairs > 0 AS has_pairs FROM media_reco.refresh_neighbors('ease_big');
RESET maintenance_work_mem;
SELECT NOT EXISTS (SELECT * FROM media_reco.item_neighbors WHERE recommender = 'ease_big' EXCEPT SELECT * FROM ease_big_before)
       AND NOT EXISTS (SELECT * FROM ease_big_before EXCEPT SELECT * FROM media_reco.item_neighbors WHERE recommender = 'ease_big')
         AS same_lists;
SELECT media_reco.drop_recommender('ease_big');

-- weights the core cannot use: a Gram sum beyond double precision, and a G + λI that is not
-- positive definite in floating point (one user, two items of weight 1e150: the pivot 1e300 +
-- 1e-300 − 1e300 rounds to 0) are 22003, as simcore reports them
CREATE TABLE ehuge (user_id int, item_id int, w float8);
INSERT INTO ehuge VALUES (1, 1, 1e200), (1, 2, 1e200), (2, 1, 1);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.item_similarity('ehuge', weight_col => 'w', metric => 'ease')$$);
TRUNCATE ehuge;
INSERT INTO ehuge VALUES (1, 1, 1e150), (1, 2, 1e150);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.item_similarity('ehuge', weight_col => 'w', metric => 'ease', ease_lambda => 1e-300)$$);
-- negative weights are fine for EASE (G stays positive semi-definite)
-- negative weights are fine for EASE: user 1 has items 1 and 2 at w −1 and −2, user 2 item 1 at
-- w 1:  G = [2 2; 2 4],  G + 2I = [4 2; 2 6],  P = [6 −2; −2 4] / 20:  B[1][2] = 1/2,  B[2][1] = 1/3
TRUNCATE ehuge;
INSERT INTO ehuge VALUES (1, 1, -1), (1, 2, -2), (2, 1, 1);
SELECT item_id, neighbor_id, round(similarity::numeric, 12) AS similarity
  FROM media_reco.item_similarity('ehuge', weight_col => 'w', metric => 'ease', ease_lambda => 2);

-- user-based CF has no EASE counterpart: 0A000, as for bm25
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.similar_users('ease_c', 1)$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.recommend_user_based('ease_c', 1)$$);

-- ---------------------------------------------------------------------------
-- 9. The stored lists depend neither on media_reco.threads nor on the physical row order
--    (600 items: several tiles of the factor and the inverse, many selection tasks)
CREATE TABLE et AS SELECT user_id, item_id, plays FROM media_reco.synthetic_interactions(2000, 600, 30000, 9);
SELECT count(DISTINCT item_id) AS items FROM et;
SELECT * FROM pg_temp.check_order_independence('et', $$media_reco.item_similarity(%s, weight_col => 'plays', metric => 'ease', k => 30, ease_lambda => 20)$$);

SELECT media_reco.drop_recommender('ease_w'), media_reco.drop_recommender('ease_c');
RESET search_path;
DROP SCHEMA ease_test CASCADE;
