-- user-based collaborative filtering: similar_users and recommend_user_based, computed live
\i test/sql/expect_error.sql
CREATE SCHEMA userbased_test;
SET search_path = userbased_test, public;
SET client_min_messages = warning;

CREATE TABLE v AS SELECT user_id, item_id, plays FROM media_reco.synthetic_interactions(300, 100, 5000, 21);
INSERT INTO v VALUES (5, 1, NULL), (NULL, 1, 3);   -- skipped, as everywhere
CREATE INDEX ON v (user_id);
CREATE INDEX ON v (item_id);
SELECT media_reco.create_recommender(m, 'v', weight_col => 'plays', metric => m)
FROM unnest(ARRAY['cosine', 'jaccard', 'pearson', 'adjusted_cosine', 'conditional']) m;
SELECT media_reco.create_recommender('shrunk', 'v', weight_col => 'plays', min_support => 3, shrinkage => 10);

-- the user vectors, and every definition written out in SQL
CREATE TABLE w AS SELECT user_id::bigint AS u, item_id::bigint AS i, sum(plays)::float8 AS w
FROM v WHERE user_id IS NOT NULL AND item_id IS NOT NULL AND plays IS NOT NULL GROUP BY 1, 2;
CREATE TABLE umean AS SELECT u, avg(w) AS m, count(*) AS n FROM w GROUP BY u;
CREATE TABLE imean AS SELECT i, avg(w) AS m FROM w GROUP BY i;
CREATE TABLE centred AS
SELECT w.u, w.i, w.w, w.w - um.m AS wp, w.w - im.m AS wa
FROM w JOIN umean um USING (u) JOIN imean im USING (i);
CREATE FUNCTION brute_sim(metric text, target bigint, min_support int DEFAULT 1, shrinkage float8 DEFAULT 0)
RETURNS TABLE(v bigint, sim float8) LANGUAGE sql AS $$
  WITH pairs AS (
    SELECT b.u AS v, count(*) AS support,
           sum(a.w * b.w) AS dot, sum(a.wp * b.wp) AS dotp, sum(a.wa * b.wa) AS dota
    FROM centred a JOIN centred b ON a.i = b.i AND b.u <> a.u
    WHERE a.u = target GROUP BY b.u),
  norms AS (SELECT u, sqrt(sum(w * w)) AS n, sqrt(sum(wp * wp)) AS np, sqrt(sum(wa * wa)) AS na, count(*) AS cnt
            FROM centred GROUP BY u),
  raw AS (
    SELECT p.v, p.support,
           CASE metric
             WHEN 'cosine' THEN p.dot / nullif(nu.n * nv.n, 0)
             WHEN 'pearson' THEN p.dotp / nullif(nu.np * nv.np, 0)
             WHEN 'adjusted_cosine' THEN p.dota / nullif(nu.na * nv.na, 0)
             WHEN 'jaccard' THEN p.support::float8 / (nu.cnt + nv.cnt - p.support)
             WHEN 'conditional' THEN p.support::float8 / nu.cnt
           END * p.support / (p.support + shrinkage) AS sim
    FROM pairs p, norms nu, norms nv WHERE nu.u = target AND nv.u = p.v)
  SELECT v, sim FROM raw WHERE sim > 0 AND support >= min_support $$;

-- similar_users against the definitions: the same users in the same order, the same similarities
SELECT m AS metric,
       bool_and(b.v = s.neighbor_user_id AND abs(b.sim - s.similarity) < 1e-12) AS matches, count(*) AS rows
FROM unnest(ARRAY['cosine', 'jaccard', 'pearson', 'adjusted_cosine', 'conditional']) m,
     unnest(ARRAY[3, 17, 42]) target,
     LATERAL (SELECT row_number() OVER (ORDER BY sim DESC, v) AS rank, * FROM brute_sim(m, target)
              ORDER BY sim DESC, v LIMIT 10) b
     JOIN LATERAL media_reco.similar_users(m, target, 10) s ON s.rank = b.rank
GROUP BY m ORDER BY m;
SELECT bool_and(b.v = s.neighbor_user_id AND abs(b.sim - s.similarity) < 1e-12) AS shrinkage_and_support, count(*)
FROM (SELECT row_number() OVER (ORDER BY sim DESC, v) AS rank, * FROM brute_sim('cosine', 17, 3, 10)
      ORDER BY sim DESC, v LIMIT 10) b
JOIN media_reco.similar_users('shrunk', 17, 10) s ON s.rank = b.rank;

-- recommend_user_based: score(u, j) = Σ over the 20 nearest users v of sim(u, v) · w(v, j), unseen j
SELECT m AS metric,
       bool_and(b.item = r.item_id AND abs(b.score - r.score) < 1e-9 * abs(b.score)) AS matches, count(*) AS rows
FROM unnest(ARRAY['cosine', 'jaccard', 'pearson']) m,
     LATERAL (
       SELECT row_number() OVER (ORDER BY score DESC, item) AS rank, * FROM (
         SELECT w.i AS item, sum(n.sim * w.w) AS score
         FROM (SELECT * FROM brute_sim(m, 17) ORDER BY sim DESC, v LIMIT 20) n JOIN w ON w.u = n.v
         WHERE w.i NOT IN (SELECT i FROM w WHERE u = 17)
         GROUP BY w.i) s
       ORDER BY score DESC, item LIMIT 10) b
     JOIN LATERAL media_reco.recommend_user_based(m, 17, 10, 20) r ON r.rank = b.rank
GROUP BY m ORDER BY m;
-- exclude_seen => false may return the user's own items; unknown users get nothing
SELECT count(*) FILTER (WHERE item_id IN (SELECT i FROM w WHERE u = 17)) > 0 AS seen_items_back
FROM media_reco.recommend_user_based('cosine', 17, 50, 20, exclude_seen => false);
SELECT count(*) AS unknown_user_rows FROM media_reco.recommend_user_based('cosine', -1);
SELECT count(*) AS unknown_user_neighbours FROM media_reco.similar_users('cosine', -1);

-- centring constant weights gives exact zeros, not rounding residues that look perfectly similar:
-- item 10 has 0.1 from everyone (adjusted_cosine: nothing to say), user 1 gives 0.1 to everything
-- (pearson: nothing to say about user 1)
CREATE TABLE flat_u (user_id int, item_id int, r float8);
INSERT INTO flat_u VALUES (1, 10, 0.1), (2, 10, 0.1), (3, 10, 0.1);
SELECT media_reco.create_recommender('flat_adj', 'flat_u', weight_col => 'r', metric => 'adjusted_cosine');
SELECT count(*) AS neighbours FROM media_reco.similar_users('flat_adj', 1);
CREATE TABLE flat_p (user_id int, item_id int, r float8);
INSERT INTO flat_p VALUES (1, 1, 0.1), (1, 2, 0.1), (1, 3, 0.1), (2, 1, 0.5), (2, 2, 0.1), (2, 3, 0.9),
  (3, 1, 0.9), (3, 2, 0.3), (3, 3, 0.1), (3, 4, 0.7), (2, 4, 0.2);
SELECT media_reco.create_recommender('flat_pearson', 'flat_p', weight_col => 'r', metric => 'pearson');
SELECT count(*) AS neighbours FROM media_reco.similar_users('flat_pearson', 1);
SELECT count(*) AS recommendations FROM media_reco.recommend_user_based('flat_pearson', 1);
SELECT neighbor_user_id, round(similarity::numeric, 9) AS similarity FROM media_reco.similar_users('flat_pearson', 2);

-- errors
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.similar_users('nope', 1)$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.similar_users('cosine', 1, 0)$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.similar_users('cosine', NULL)$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.recommend_user_based('cosine', 1, neighbors => 0)$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.recommend_user_based('cosine', 1, exclude_seen => NULL)$$);
SELECT media_reco.create_recommender('bm', 'v', metric => 'bm25');
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.similar_users('bm', 1)$$);
-- a dropped source: 42P01 naming it (not "relation with OID 0"), the registry row and the
-- neighbour lists of the last refresh left as they were
CREATE TABLE ub_gone AS SELECT * FROM v WHERE user_id <= 60;
SELECT media_reco.create_recommender('ub_gone', 'ub_gone', weight_col => 'plays');
SELECT interactions > 0 AS refreshed FROM media_reco.refresh_neighbors('ub_gone');
SELECT count(*) > 0 AS answers_before FROM media_reco.similar_users('ub_gone', 1);
DROP TABLE ub_gone;
CREATE TEMP TABLE ub_gone_before AS
SELECT r.*, s.* FROM media_reco.recommenders r JOIN media_reco.neighbor_store s ON s.recommender_id = r.id
 WHERE r.name = 'ub_gone';
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.similar_users('ub_gone', 1)$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.recommend_user_based('ub_gone', 1)$$);
SELECT count(*) AS lists,
       bool_and(source IS NULL AND dropped_source = 'userbased_test.ub_gone') AS marked,
       NOT EXISTS (SELECT r.*, s.* FROM media_reco.recommenders r
                     JOIN media_reco.neighbor_store s ON s.recommender_id = r.id WHERE r.name = 'ub_gone'
                   EXCEPT SELECT * FROM ub_gone_before)
       AND NOT EXISTS (SELECT * FROM ub_gone_before
                       EXCEPT SELECT r.*, s.* FROM media_reco.recommenders r
                                JOIN media_reco.neighbor_store s ON s.recommender_id = r.id WHERE r.name = 'ub_gone') AS intact
  FROM ub_gone_before;
DROP TABLE ub_gone_before;
SELECT media_reco.drop_recommender(name) FROM media_reco.recommenders ORDER BY name;
