-- item_similarity against a brute-force SQL computation of the same definition,
-- on a generated table of a few thousand rows, every metric, shrinkage and min_support.
SET client_min_messages = warning;

CREATE TABLE ref_src AS
SELECT user_id, item_id,
       CASE WHEN (user_id + item_id) % 17 = 0 THEN NULL ELSE rating END AS rating
  FROM media_reco.synthetic_interactions(300, 150, 4000, 11);
INSERT INTO ref_src VALUES (NULL, 1, 3), (1, NULL, 3);   -- ignored rows
-- a non-integer weight, so that centred weights have no accidental exact zeros
ALTER TABLE ref_src ADD COLUMN wr float8;
UPDATE ref_src SET wr = rating + ((user_id * 7 + item_id * 13) % 97) / 100.0;
SELECT count(*) AS rows, count(DISTINCT (user_id, item_id)) AS distinct_pairs FROM ref_src;

-- the definition, written out in SQL: w(u,i) summed over duplicates
CREATE FUNCTION ref_similarity(metric text, use_weight bool, k int, min_support int, lambda float8)
RETURNS TABLE(item_id bigint, neighbor_id bigint, similarity float8, support bigint, rank bigint)
LANGUAGE sql AS $$
  WITH w0 AS (
    SELECT user_id AS u, item_id AS i,
           CASE WHEN use_weight THEN sum(wr) ELSE count(*) END::float8 AS w
      FROM ref_src
     WHERE user_id IS NOT NULL AND item_id IS NOT NULL AND (NOT use_weight OR wr IS NOT NULL)
     GROUP BY 1, 2),
  -- bm25 (K1 = 100, B = 0.8): N users, idf(i) = ln N - ln(1 + |U(i)|), len(u) = Σ w(u,·)
  bm AS (
    SELECT u, i, w, sum(w) OVER (PARTITION BY u) AS len, count(*) OVER (PARTITION BY i) AS ucount,
           (SELECT count(DISTINCT u) FROM w0) AS n_users
      FROM w0),
  bmw AS (
    SELECT u, i, w * 101.0 / (100.0 * (0.2 + 0.8 * len / (SELECT avg(l) FROM (SELECT DISTINCT u, len AS l FROM bm) x)) + w)
                 * (ln(n_users) - ln(1 + ucount)) AS w
      FROM bm),
  -- adjusted cosine centres on the user's mean weight, pearson on the item's
  w AS (
    SELECT u, i, CASE metric WHEN 'adjusted_cosine' THEN w - avg(w) OVER (PARTITION BY u)
                             WHEN 'pearson' THEN w - avg(w) OVER (PARTITION BY i)
                             ELSE w END AS w
      FROM w0 WHERE metric <> 'bm25'
    UNION ALL
    SELECT u, i, w FROM bmw WHERE metric = 'bm25'),
  n AS (SELECT i, sqrt(sum(w * w)) AS norm, count(*) AS cnt FROM w GROUP BY i),
  p AS (SELECT a.i, b.i AS j, sum(a.w * b.w) AS dot, count(*) AS sup
          FROM w a JOIN w b ON a.u = b.u AND a.i <> b.i GROUP BY 1, 2),
  s AS (SELECT p.i, p.j, p.sup,
               (CASE metric WHEN 'jaccard' THEN p.sup::float8 / (na.cnt + nb.cnt - p.sup)
                            WHEN 'conditional' THEN p.sup::float8 / na.cnt
                            WHEN 'bm25' THEN p.dot
                            ELSE p.dot / nullif(na.norm * nb.norm, 0) END)
               * p.sup / (p.sup + lambda) AS sim
          FROM p JOIN n na ON na.i = p.i JOIN n nb ON nb.i = p.j
         WHERE p.sup >= min_support),
  r AS (SELECT i, j, sim, sup, row_number() OVER (PARTITION BY i ORDER BY sim DESC, j) AS rk
          FROM s WHERE sim > 0)
  SELECT i, j, sim, sup, rk FROM r WHERE rk <= k
$$;

-- all candidate similarities, to check a chosen neighbour's value whatever its rank
CREATE FUNCTION compare(metric text, use_weight bool, k int, min_support int, lambda float8)
RETURNS TABLE(rows bigint, ref_rows bigint, count_mismatch bigint, value_mismatch bigint,
              max_abs_diff float8, misordered bigint)
LANGUAGE sql AS $$
  WITH mine AS (
    SELECT * FROM media_reco.item_similarity('ref_src', 'user_id', 'item_id',
                    CASE WHEN use_weight THEN 'wr' END::name, metric, k, min_support, lambda)),
  ref AS (SELECT * FROM ref_similarity(metric, use_weight, k, min_support, lambda)),
  full_ref AS (SELECT * FROM ref_similarity(metric, use_weight, 1000000, min_support, lambda)),
  counts AS (
    SELECT coalesce(a.item_id, b.item_id) AS item_id, a.c AS mine, b.c AS ref
      FROM (SELECT item_id, count(*) c FROM mine GROUP BY 1) a
      FULL JOIN (SELECT item_id, count(*) c FROM ref GROUP BY 1) b USING (item_id)),
  by_rank AS (   -- the similarity at each rank agrees (robust to float ties)
    SELECT abs(m.similarity - r.similarity) AS d
      FROM mine m JOIN ref r ON r.item_id = m.item_id AND r.rank = m.rank),
  by_pair AS (   -- each chosen neighbour really has that similarity and support
    SELECT m.*, f.similarity AS ref_sim, f.support AS ref_sup
      FROM mine m LEFT JOIN full_ref f ON f.item_id = m.item_id AND f.neighbor_id = m.neighbor_id)
  SELECT (SELECT count(*) FROM mine), (SELECT count(*) FROM ref),
         (SELECT count(*) FROM counts WHERE mine IS DISTINCT FROM ref),
         (SELECT count(*) FROM by_pair WHERE ref_sim IS NULL OR abs(similarity - ref_sim) > 1e-9
                                             OR support <> ref_sup),
         (SELECT max(d) FROM by_rank),
         (SELECT count(*) FROM (SELECT similarity, neighbor_id,
                                       lag(similarity) OVER w ps, lag(neighbor_id) OVER w pn
                                  FROM mine WINDOW w AS (PARTITION BY item_id ORDER BY rank)) x
           WHERE ps < similarity OR (ps = similarity AND pn > neighbor_id))
$$;

-- every case the same checks: rows exist, same count as the reference, per-item counts,
-- each chosen neighbour's value and support, the value at each rank, the order
SELECT c.label AS "case", r.rows > 0 AS has_rows, r.rows = r.ref_rows AS same_rows, r.count_mismatch,
       r.value_mismatch, r.max_abs_diff < 1e-9 AS close, r.misordered
  FROM (VALUES
          (1, 'cosine, counts', 'cosine', false, 10, 1, 0),
          (2, 'cosine, weights, k 5, support 2, lambda 3', 'cosine', true, 5, 2, 3),
          (3, 'jaccard, k 10', 'jaccard', false, 10, 1, 0),
          (4, 'jaccard, k 3, support 3, lambda 10', 'jaccard', false, 3, 3, 10),
          (5, 'cosine, weights, k 200 (all)', 'cosine', true, 200, 1, 0),
          (6, 'adjusted_cosine, weights, k 10', 'adjusted_cosine', true, 10, 1, 0),
          (7, 'adjusted_cosine, weights, k 5, support 2, lambda 3', 'adjusted_cosine', true, 5, 2, 3),
          (8, 'pearson, weights, k 10', 'pearson', true, 10, 1, 0),
          (9, 'pearson, weights, k 200, support 3', 'pearson', true, 200, 3, 0),
          (10, 'conditional, k 10', 'conditional', false, 10, 1, 0),
          (11, 'conditional, k 5, support 2, lambda 4', 'conditional', false, 5, 2, 4),
          (12, 'bm25, counts, k 10', 'bm25', false, 10, 1, 0),
          (13, 'bm25, weights, k 5, support 2, lambda 3', 'bm25', true, 5, 2, 3)
       ) c(ord, label, metric, use_weight, k, min_support, lambda),
       LATERAL compare(c.metric, c.use_weight, c.k, c.min_support, c.lambda::float8) r
 ORDER BY c.ord;

-- conditional is asymmetric: P(j | i) <> P(i | j) when the items have different audiences
SELECT count(*) > 0 AS asymmetric_pairs
  FROM media_reco.item_similarity('ref_src', metric => 'conditional', k => 200) a
  JOIN media_reco.item_similarity('ref_src', metric => 'conditional', k => 200) b
    ON a.item_id = b.neighbor_id AND a.neighbor_id = b.item_id
 WHERE abs(a.similarity - b.similarity) > 1e-6;

-- bm25's K1 and B change the weighting: B = 0 ignores lengths, K1 = 0 keeps only idf
SELECT count(*) > 0 AS b_matters FROM (
  SELECT item_id, neighbor_id, similarity FROM media_reco.item_similarity('ref_src', metric => 'bm25', k => 5)
  EXCEPT SELECT item_id, neighbor_id, similarity FROM media_reco.item_similarity('ref_src', metric => 'bm25', k => 5, bm25_b => 0)) d;
SELECT count(*) > 0 AS k1_matters FROM (
  SELECT item_id, neighbor_id, similarity FROM media_reco.item_similarity('ref_src', metric => 'bm25', k => 5)
  EXCEPT SELECT item_id, neighbor_id, similarity FROM media_reco.item_similarity('ref_src', metric => 'bm25', k => 5, bm25_k1 => 1)) d;
