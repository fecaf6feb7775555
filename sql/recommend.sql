-- recommend() and similar_items(): hand-checked scores, ties, live history
SET client_min_messages = warning;
SET extra_float_digits = 0;

CREATE TABLE hist (user_id bigint, item_id bigint, w float8);
INSERT INTO hist VALUES
  (1, 1, 1), (1, 2, 1), (2, 1, 1), (2, 2, 1), (2, 3, 1), (3, 3, 1), (3, 1, 2), (1, 1, 1);
SELECT media_reco.create_recommender('r', 'hist', weight_col => 'w');
SELECT pairs FROM media_reco.refresh_neighbors('r');
-- weighted: item 1 = (u1:2, u2:1, u3:2) norm 3; items 2 and 3 have norm sqrt(2)
SELECT item_id, neighbor_id, round(similarity::numeric, 12) AS similarity FROM media_reco.item_neighbors
 WHERE recommender = 'r' ORDER BY 1, rank;

-- user 3 watched item 3 (w 1) and item 1 (w 2): score(2) = 1 * sim(3,2) + 2 * sim(1,2)
SELECT item_id, round(score::numeric, 12) AS score, rank FROM media_reco.recommend('r', 3);
SELECT round((1 * 0.5 + 2 * sqrt(0.5))::numeric, 12) AS expected_score_of_2;
SELECT item_id, round(score::numeric, 12) AS score, rank FROM media_reco.recommend('r', 3, 10, false);
-- k cuts the list
SELECT item_id, rank FROM media_reco.recommend('r', 3, 1, false);
-- unknown user, or a user with no usable history: no rows, no error
SELECT count(*) FROM media_reco.recommend('r', 999);
INSERT INTO hist VALUES (7, 1, NULL);
SELECT count(*) FROM media_reco.recommend('r', 7);

-- the history is read live: a new interaction changes the result before any refresh
INSERT INTO hist VALUES (7, 2, 4);
SELECT item_id, round(score::numeric, 12) AS score, rank FROM media_reco.recommend('r', 7);
-- duplicates in the history are summed (w = 4 + 4)
INSERT INTO hist VALUES (7, 2, 4);
SELECT item_id, round(score::numeric, 12) AS score, rank FROM media_reco.recommend('r', 7);
-- an item the neighbour table does not know yet contributes nothing
INSERT INTO hist VALUES (7, 99, 1);
SELECT item_id, round(score::numeric, 12) AS score, rank FROM media_reco.recommend('r', 7);

-- ties in score go to the smaller item id
CREATE TABLE tie_hist (user_id int, item_id int);
INSERT INTO tie_hist SELECT u, i FROM generate_series(1, 3) u, (VALUES (22), (21), (20)) v(i);
INSERT INTO tie_hist VALUES (9, 20);
SELECT media_reco.create_recommender('ties', 'tie_hist');
SELECT pairs FROM media_reco.refresh_neighbors('ties');
SELECT item_id, score, rank FROM media_reco.recommend('ties', 9);

-- similar_items reads the stored lists
SELECT * FROM media_reco.similar_items('r', 1);
SELECT * FROM media_reco.similar_items('r', 1, 1);
SELECT count(*) FROM media_reco.similar_items('r', 12345);
SELECT * FROM media_reco.similar_items('ties', 22, 10000);

-- against a brute-force SQL computation over the materialized table, on generated data
CREATE TABLE big_hist AS SELECT * FROM media_reco.synthetic_interactions(500, 300, 12000, 21);
CREATE INDEX ON big_hist (user_id);
SELECT media_reco.create_recommender('big', 'big_hist', weight_col => 'rating', k => 20, shrinkage => 5);
SELECT pairs > 0 AS has_pairs FROM media_reco.refresh_neighbors('big');
CREATE TABLE rec_mine AS
SELECT u.user_id, r.* FROM generate_series(1, 500, 7) u(user_id),
       LATERAL media_reco.recommend('big', u.user_id, 10) r;
CREATE TABLE rec_ref AS
WITH h AS (SELECT user_id, item_id, sum(rating)::float8 AS w FROM big_hist
            WHERE user_id IN (SELECT generate_series(1, 500, 7)) GROUP BY 1, 2),
s AS (SELECT h.user_id, n.neighbor_id AS item_id, sum(h.w * n.similarity) AS score
        FROM h JOIN media_reco.item_neighbors n ON n.recommender = 'big' AND n.item_id = h.item_id
       WHERE NOT EXISTS (SELECT 1 FROM h h2 WHERE h2.user_id = h.user_id AND h2.item_id = n.neighbor_id)
       GROUP BY 1, 2)
SELECT user_id, item_id, score, row_number() OVER (PARTITION BY user_id ORDER BY score DESC, item_id) AS rank
  FROM s;
SELECT (SELECT count(*) FROM rec_mine) > 500 AS many,
       count(*) FILTER (WHERE r.item_id IS NULL OR abs(m.score - r.score) > 1e-9) AS mismatches
  FROM rec_mine m LEFT JOIN rec_ref r USING (user_id, rank);
SELECT count(*) AS missing_users_in_mine
  FROM (SELECT DISTINCT user_id FROM rec_ref) r
 WHERE NOT EXISTS (SELECT 1 FROM rec_mine m WHERE m.user_id = r.user_id);

-- The same data under other item ids: ids around zero (the dense accumulator
-- over a range that crosses zero) and ids 10^16 apart (too sparse for it: the
-- hash table).  The map is increasing, so ties keep their order: both must
-- give exactly the scores and ranks of 'big' (checked against SQL above).
CREATE TABLE big_neg AS SELECT user_id, item_id - 150 AS item_id, rating FROM big_hist;
CREATE TABLE big_sparse AS SELECT user_id, (item_id - 150) * 10000000000000000 AS item_id, rating FROM big_hist;
SELECT media_reco.create_recommender('big_neg', 'big_neg', weight_col => 'rating', k => 20, shrinkage => 5);
SELECT media_reco.create_recommender('big_sparse', 'big_sparse', weight_col => 'rating', k => 20, shrinkage => 5);
SELECT pairs > 0 AS has_pairs FROM media_reco.refresh_neighbors('big_neg');
SELECT pairs > 0 AS has_pairs FROM media_reco.refresh_neighbors('big_sparse');
SELECT count(*) AS rows_compared,
       count(*) FILTER (WHERE n.item_id IS DISTINCT FROM m.item_id - 150
                           OR n.score::text IS DISTINCT FROM m.score::text) AS differ_neg,
       count(*) FILTER (WHERE s.item_id IS DISTINCT FROM (m.item_id - 150) * 10000000000000000
                           OR s.score::text IS DISTINCT FROM m.score::text) AS differ_sparse
  FROM rec_mine m
  LEFT JOIN LATERAL media_reco.recommend('big_neg', m.user_id, 10) n ON n.rank = m.rank
  LEFT JOIN LATERAL media_reco.recommend('big_sparse', m.user_id, 10) s ON s.rank = m.rank;
-- with filters: exclude and only act alike on both accumulators
SELECT count(*) FILTER (WHERE cardinality(a) = 10) AS full_lists, count(*) FILTER (WHERE a IS DISTINCT FROM b) AS differences
  FROM (SELECT (SELECT array_agg(item_id + 150 || ':' || score ORDER BY rank)
                  FROM media_reco.recommend('big_neg', u, 10, exclude => '{-149,-100,0,7}', "only" => (SELECT array_agg(g) FROM generate_series(-150, 100) g))) AS a,
               (SELECT array_agg(item_id / 10000000000000000 + 150 || ':' || score ORDER BY rank)
                  FROM media_reco.recommend('big_sparse', u, 10,
                         exclude => '{-1490000000000000000,-1000000000000000000,0,70000000000000000}',
                         "only" => (SELECT array_agg(g * 10000000000000000) FROM generate_series(-150, 100) g))) AS b
          FROM generate_series(1, 500, 13) u) x;
SELECT media_reco.drop_recommender(n) FROM unnest(ARRAY['big_neg', 'big_sparse']) n;
DROP TABLE big_neg, big_sparse;

-- Long histories (history items x k over 2^20) stream into the hash table without gathering:
-- k = 10000 and a user with 150 items (streamed) and the generated users (gathered), against SQL
CREATE TABLE big_long AS SELECT user_id, item_id, rating FROM big_hist
  UNION ALL SELECT 9999, i, 1 + i % 5 FROM generate_series(1, 300, 2) i;
SELECT media_reco.create_recommender('big_long', 'big_long', weight_col => 'rating', k => 10000);
SELECT pairs > 0 AS has_pairs FROM media_reco.refresh_neighbors('big_long');
WITH u(user_id) AS (VALUES (9999), (1), (8), (15)),
h AS (SELECT user_id, item_id, sum(rating)::float8 AS w FROM big_long WHERE user_id IN (SELECT user_id FROM u) GROUP BY 1, 2),
s AS (SELECT h.user_id, n.neighbor_id AS item_id, sum(h.w * n.similarity) AS score
        FROM h JOIN media_reco.item_neighbors n ON n.recommender = 'big_long' AND n.item_id = h.item_id
       WHERE NOT EXISTS (SELECT 1 FROM h h2 WHERE h2.user_id = h.user_id AND h2.item_id = n.neighbor_id)
       GROUP BY 1, 2),
ref AS (SELECT user_id, item_id, score, row_number() OVER (PARTITION BY user_id ORDER BY score DESC, item_id) AS rank FROM s)
SELECT u.user_id, (SELECT count(*) FROM h WHERE h.user_id = u.user_id) AS history,
       count(m.*) AS recommended,
       count(*) FILTER (WHERE r.item_id IS DISTINCT FROM m.item_id OR abs(r.score - m.score) > 1e-9 * abs(r.score)) AS mismatches
  FROM u CROSS JOIN LATERAL media_reco.recommend('big_long', u.user_id, 20) m
  LEFT JOIN ref r ON r.user_id = u.user_id AND r.rank = m.rank
 GROUP BY u.user_id ORDER BY u.user_id;
SELECT media_reco.drop_recommender('big_long');
DROP TABLE big_long;

-- recommend_for_items: an anonymous session scored exactly as a history
SELECT item_id, round(score::numeric, 12) AS score, rank FROM media_reco.recommend_for_items('r', '{3,1}', '{1,2}');
SELECT item_id, round(score::numeric, 12) AS score, rank FROM media_reco.recommend_for_items('r', '{3,1,1}');  -- counts: w(1) = 2
SELECT item_id, rank FROM media_reco.recommend_for_items('r', '{3,NULL}');                                     -- NULL ignored
SELECT item_id, rank FROM media_reco.recommend_for_items('r', '{3,1}', '{1,NULL}');                            -- NULL weight ignored
SELECT count(*) FROM media_reco.recommend_for_items('r', '{3}', exclude => '{1,2}');                           -- blocklist
SELECT count(*) FROM media_reco.recommend_for_items('r', '{}');
SELECT count(*) FROM media_reco.recommend_for_items('r', '{12345}');
-- on generated data it equals recommend() for the same history
SELECT count(*) AS users_compared,
       count(*) FILTER (WHERE a IS DISTINCT FROM b) AS differences
  FROM (SELECT u,
               (SELECT array_agg(item_id || ':' || round(score::numeric, 9) ORDER BY rank)
                  FROM media_reco.recommend('big', u, 10)) AS a,
               (SELECT array_agg(item_id || ':' || round(score::numeric, 9) ORDER BY rank)
                  FROM media_reco.recommend_for_items('big',
                         (SELECT array_agg(item_id) FROM big_hist WHERE user_id = u),
                         (SELECT array_agg(rating::float8) FROM big_hist WHERE user_id = u), 10)) AS b
          FROM generate_series(1, 500, 11) u) x;

-- explain_recommendation: contributions = weight * similarity, summing to the score
SELECT because_item_id, weight, round(similarity::numeric, 12) AS similarity,
       round(contribution::numeric, 12) AS contribution, rank
  FROM media_reco.explain_recommendation('r', 3, 2);
SELECT count(*) FROM media_reco.explain_recommendation('r', 999, 2);     -- no history
SELECT count(*) FROM media_reco.explain_recommendation('r', 3, 12345);   -- not a neighbour of anything
SELECT count(*) AS recommendations,
       count(*) FILTER (WHERE abs(r.score - e.total) > 1e-9 OR e.total IS NULL) AS mismatches,
       bool_and(e.ranks_ok) AS ranked_by_contribution
  FROM generate_series(1, 500, 13) u,
       LATERAL media_reco.recommend('big', u, 5) r,
       LATERAL (SELECT sum(contribution) AS total,
                       bool_and(prev IS NULL OR prev > contribution OR (prev = contribution AND prev_id < because_item_id)) AS ranks_ok
                  FROM (SELECT *, lag(contribution) OVER (ORDER BY rank) AS prev,
                               lag(because_item_id) OVER (ORDER BY rank) AS prev_id
                          FROM media_reco.explain_recommendation('big', u, r.item_id)) z) e;

-- popular_items: distinct users per item, most first, ties to the smaller id; read live
SELECT * FROM media_reco.popular_items('r', 2);
SELECT count(*) AS differences FROM (
  (SELECT item_id, users, rank FROM media_reco.popular_items('big', 25)
   EXCEPT
   SELECT item_id, users, rank FROM (
     SELECT item_id, count(DISTINCT user_id) AS users,
            row_number() OVER (ORDER BY count(DISTINCT user_id) DESC, item_id)::int AS rank
       FROM big_hist WHERE user_id IS NOT NULL AND item_id IS NOT NULL AND rating IS NOT NULL
      GROUP BY item_id) x WHERE rank <= 25)) d;
SELECT count(*) FROM media_reco.popular_items('big', 10000);

-- the cached history plan follows the source by OID, within one session: after a rename
-- and a new table under the old name the recommender still reads its own relation, and
-- after the swap back a row added to it is seen at once (user 1's history {1,2} -> item 3)
CREATE TABLE swap_src (user_id int, item_id int);
INSERT INTO swap_src VALUES (1, 1), (1, 2), (2, 1), (2, 2), (2, 3), (3, 3);
SELECT media_reco.create_recommender('swap', 'swap_src');
SELECT pairs FROM media_reco.refresh_neighbors('swap');
SELECT item_id, rank FROM media_reco.recommend('swap', 1);
ALTER TABLE swap_src RENAME TO swap_old;
CREATE TABLE swap_src (user_id int, item_id int);
INSERT INTO swap_src VALUES (1, 3);
SELECT item_id, rank FROM media_reco.recommend('swap', 1);
DROP TABLE swap_src;
ALTER TABLE swap_old RENAME TO swap_src;
INSERT INTO swap_src VALUES (1, 3);
SELECT count(*) AS after_seen FROM media_reco.recommend('swap', 1);
SELECT media_reco.drop_recommender('swap');
DROP TABLE swap_src;

-- the plan cache (64 entries): 70 recommenders over 70 tables, each asked twice, so plans are
-- evicted and prepared again; then a source whose rows are computed by calling recommend() on all
-- 70, so the cache is re-entered while the outer history plan runs (its entry must stay pinned).
-- Every table holds the data above: user 1's answer is item 3 at rank 1.
DO $$
BEGIN
  FOR n IN 1..70 LOOP
    EXECUTE format('CREATE TABLE pc_%s (user_id int, item_id int)', n);
    EXECUTE format('INSERT INTO pc_%s VALUES (1, 1), (1, 2), (2, 1), (2, 2), (2, 3), (3, 3)', n);
    PERFORM media_reco.create_recommender('pc_' || n, format('pc_%s', n)::regclass);
    PERFORM media_reco.refresh_neighbors('pc_' || n);
  END LOOP;
END
$$;
SELECT count(*) FILTER (WHERE r.item_id = 3 AND r.rank = 1) AS right_answers, count(*) AS rows
  FROM generate_series(1, 2) pass, generate_series(1, 70) n, LATERAL media_reco.recommend('pc_' || n, 1) r;
CREATE TABLE pc_base (user_id int, item_id int);
INSERT INTO pc_base VALUES (1, 1), (1, 2), (2, 1), (2, 2), (2, 3), (3, 3);
CREATE VIEW pc_reenter AS
  SELECT b.user_id, b.item_id FROM pc_base b
   WHERE (SELECT count(*) FROM generate_series(1, 70) n, LATERAL media_reco.recommend('pc_' || n, 1) r
           WHERE r.item_id = 3) = 70;
SELECT media_reco.create_recommender('pc_re', 'pc_reenter');
SELECT pairs FROM media_reco.refresh_neighbors('pc_re');
SELECT item_id, rank FROM media_reco.recommend('pc_re', 1);
SELECT item_id, rank FROM media_reco.recommend('pc_re', 1);
SELECT count(*) AS dropped FROM (SELECT media_reco.drop_recommender(name) FROM media_reco.recommenders WHERE name LIKE 'pc\_%') d;
DROP VIEW pc_reenter;
DROP TABLE pc_base;
DO $$ BEGIN FOR n IN 1..70 LOOP EXECUTE format('DROP TABLE pc_%s', n); END LOOP; END $$;
