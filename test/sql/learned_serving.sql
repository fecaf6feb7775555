-- shared by ease.sql and rp3beta.sql (with order_independence.sql): the serving functions on a learned model's stored lists,
-- checked against brute-force SQL over media_reco.item_neighbors (never against the extension's
-- own results).  hist is a relation (u, i, w) of every training user's summed usable weights,
-- test a relation (user_id, item_id) of held-out rows.  One row of checks:
--   recommend       top k of score(u,j) = sum over u's history i of w(u,i) * sim(i,j), seen items
--                   excluded, ties by smaller id: the same items at each rank (a swap only between
--                   scores equal to 1e-12), scores within 1e-12 relative, for every training user
--   recommend_all   the same for every user in one call
--   explain         the top 3 items of each user: each history item's weight (summed in another
--                   order: 1e-12 relative) and stored similarity, contribution = their product,
--                   the contributions summing to the score (1e-12 relative)
--   evaluate        precision, recall, ndcg, map, hit rate, mrr, coverage and users of the
--                   brute-force lists, through the ranking metric functions
CREATE FUNCTION pg_temp.check_serving(rec text, hist regclass, test regclass, k int)
RETURNS TABLE(users bigint, recommended bigint, recommend_mismatch bigint, recommend_all_mismatch bigint,
              explained bigint, explain_mismatch bigint, evaluate_mismatch bigint)
LANGUAGE plpgsql AS $check$
BEGIN
  EXECUTE format($q$
    CREATE TEMP TABLE bf AS
    WITH s AS (
      SELECT h.u, n.neighbor_id AS item, sum(h.w * n.similarity) AS score
        FROM %1$s h JOIN media_reco.item_neighbors n ON n.recommender = %2$L AND n.item_id = h.i
       WHERE NOT EXISTS (SELECT 1 FROM %1$s s WHERE s.u = h.u AND s.i = n.neighbor_id)
       GROUP BY 1, 2),
    r AS (SELECT *, row_number() OVER (PARTITION BY u ORDER BY score DESC, item) AS rank FROM s)
    SELECT u, item, score, rank FROM r WHERE rank <= %3$s$q$, hist, rec, k);
  EXECUTE format($q$
    CREATE TEMP TABLE mine AS
    SELECT u.u, r.item_id AS item, r.score, r.rank
      FROM (SELECT DISTINCT u FROM %1$s) u, LATERAL media_reco.recommend(%2$L, u.u, %3$s) r$q$, hist, rec, k);
  EXECUTE format($q$
    CREATE TEMP TABLE mine_all AS
    SELECT user_id AS u, item_id AS item, score, rank FROM media_reco.recommend_all(%1$L, %2$s)$q$, rec, k);
  EXECUTE format($q$
    CREATE TEMP TABLE expl AS
    SELECT m.u, m.item, m.score, e.because_item_id, e.weight, e.similarity, e.contribution,
           h.w AS want_weight, n.similarity AS want_similarity
      FROM mine m CROSS JOIN LATERAL media_reco.explain_recommendation(%1$L, m.u, m.item) e
      LEFT JOIN %2$s h ON h.u = m.u AND h.i = e.because_item_id
      LEFT JOIN media_reco.item_neighbors n
             ON n.recommender = %1$L AND n.item_id = e.because_item_id AND n.neighbor_id = m.item
     WHERE m.rank <= 3$q$, rec, hist);
  -- evaluate: test users with a held-out item they have not seen in training
  EXECUTE format($q$
    CREATE TEMP TABLE eval_want AS
    WITH rel AS (
      SELECT t.user_id::int8 AS u, array_agg(DISTINCT t.item_id::int8) AS items FROM %1$s t
       WHERE t.user_id IS NOT NULL AND t.item_id IS NOT NULL
         AND NOT EXISTS (SELECT 1 FROM %2$s h WHERE h.u = t.user_id AND h.i = t.item_id)
       GROUP BY 1),
    lists AS (
      SELECT r.items AS rel,
             coalesce((SELECT array_agg(item ORDER BY rank) FROM bf WHERE bf.u = r.u), '{}') AS items
        FROM rel r)
    SELECT v.metric, v.value FROM (
      SELECT avg(media_reco.precision_at_k(items, rel, %3$s)) AS p, avg(media_reco.recall_at_k(items, rel, %3$s)) AS r,
             avg(media_reco.ndcg_at_k(items, rel, %3$s)) AS n, avg(media_reco.average_precision_at_k(items, rel, %3$s)) AS ap,
             avg(media_reco.hit_at_k(items, rel, %3$s)) AS h, avg(media_reco.reciprocal_rank(items, rel)) AS rr,
             (SELECT count(DISTINCT x) FROM lists l2, unnest(l2.items) x)::float8
               / (SELECT count(DISTINCT i) FROM %2$s) AS cov,
             count(*)::float8 AS users
        FROM lists) a
    CROSS JOIN LATERAL (VALUES ('precision@%3$s', a.p), ('recall@%3$s', a.r), ('ndcg@%3$s', a.n),
                               ('map@%3$s', a.ap), ('hit_rate@%3$s', a.h), ('mrr', a.rr),
                               ('coverage', a.cov), ('users', a.users)) v(metric, value)$q$, test, hist, k);
  EXECUTE format($q$CREATE TEMP TABLE eval_got AS SELECT * FROM media_reco.evaluate(%1$L, %2$L, %3$s)$q$,
                 rec, test::text, k);
  RETURN QUERY
  SELECT (SELECT count(DISTINCT u) FROM bf),
         (SELECT count(*) FROM bf),
         (SELECT count(*) FROM bf b FULL JOIN mine m USING (u, rank)
           WHERE b.item IS NULL OR m.item IS NULL
              OR abs(m.score - b.score) > 1e-12 * abs(b.score)
              OR (m.item <> b.item AND NOT EXISTS (   -- a swap of equal scores only
                    SELECT 1 FROM bf b2 WHERE b2.u = b.u AND b2.item = m.item
                       AND abs(b2.score - b.score) <= 1e-12 * abs(b.score)))),
         (SELECT count(*) FROM mine m FULL JOIN mine_all a USING (u, rank)
           WHERE m.item IS DISTINCT FROM a.item OR m.score IS DISTINCT FROM a.score),
         (SELECT count(DISTINCT (u, item)) FROM expl),
         (SELECT count(*) FROM expl
           WHERE want_weight IS NULL OR abs(weight - want_weight) > 1e-12 * abs(want_weight)
              OR similarity IS DISTINCT FROM want_similarity
              OR abs(contribution - weight * similarity) > 1e-12 * abs(contribution))
         + (SELECT count(*) FROM (SELECT u, item, score, sum(contribution) AS total FROM expl
                                  GROUP BY 1, 2, 3) x
             WHERE abs(total - score) > 1e-12 * abs(score)),
         (SELECT count(*) FROM eval_want w
                 FULL JOIN (SELECT * FROM eval_got WHERE metric NOT LIKE 'popular%') g USING (metric)
           WHERE g.value IS NULL OR w.value IS NULL OR abs(g.value - w.value) > 1e-12);
  DROP TABLE bf, mine, mine_all, expl, eval_want, eval_got;
END
$check$;
