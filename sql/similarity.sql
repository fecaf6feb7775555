-- item_similarity: hand-checked cases, ties, duplicates, NULLs, edge sources
SET client_min_messages = warning;
SET extra_float_digits = 0;

-- user 1 saw item 1 twice (duplicate rows are summed: w = 2 without weights)
CREATE TABLE tiny (user_id int, item_id int, w float8);
INSERT INTO tiny VALUES
  (1, 1, 1), (1, 2, 1), (2, 1, 1), (2, 2, 1), (2, 3, 1), (3, 3, 1), (3, 1, 2), (1, 1, 1),
  (NULL, 1, 1), (4, NULL, 1), (5, 2, NULL);

-- counts: item 1 = (u1:2, u2:1, u3:1), item 2 = (u1:1, u2:1, u5:1), item 3 = (u2:1, u3:1)
SELECT item_id, neighbor_id, round(similarity::numeric, 12) AS similarity, support, rank
  FROM media_reco.item_similarity('tiny') ORDER BY item_id, rank;
-- the same numbers from the definition, by hand
SELECT round((3 / (sqrt(6) * sqrt(3)))::numeric, 12) AS cos_1_2,
       round((2 / (sqrt(6) * sqrt(2)))::numeric, 12) AS cos_1_3,
       round((1 / (sqrt(3) * sqrt(2)))::numeric, 12) AS cos_2_3;

-- with the weight column: the row with a NULL weight (user 5) is ignored
SELECT item_id, neighbor_id, round(similarity::numeric, 12) AS similarity, support, rank
  FROM media_reco.item_similarity('tiny', weight_col => 'w') ORDER BY item_id, rank;

-- jaccard: |U(i) ∩ U(j)| / |U(i) ∪ U(j)|
SELECT item_id, neighbor_id, round(similarity::numeric, 12) AS similarity, support, rank
  FROM media_reco.item_similarity('tiny', metric => 'jaccard') ORDER BY item_id, rank;

-- shrinkage multiplies by support / (support + lambda); min_support drops pairs
SELECT item_id, neighbor_id, round(similarity::numeric, 12) AS similarity, support, rank
  FROM media_reco.item_similarity('tiny', metric => 'jaccard', shrinkage => 2) ORDER BY item_id, rank;
SELECT item_id, neighbor_id, support, rank
  FROM media_reco.item_similarity('tiny', min_support => 2) ORDER BY item_id, rank;

-- k = 1 keeps the best; k beyond the catalogue returns what qualifies
SELECT item_id, neighbor_id, rank FROM media_reco.item_similarity('tiny', k => 1) ORDER BY item_id;
SELECT count(*) FROM media_reco.item_similarity('tiny', k => 10000);

-- ties: items 10, 11, 12 are identical columns; neighbours tie and go by smaller id
CREATE TABLE ties (user_id bigint, item_id bigint);
INSERT INTO ties SELECT u, i FROM generate_series(1, 3) u, (VALUES (12), (10), (11)) v(i);
INSERT INTO ties VALUES (4, 13);
SELECT * FROM media_reco.item_similarity('ties') ORDER BY item_id, rank;

-- a single user: every pair has cosine 1, ranks by id
SELECT * FROM media_reco.item_similarity('ties', k => 2) WHERE item_id = 11;
CREATE TABLE one_user AS SELECT 7 AS user_id, i AS item_id FROM generate_series(1, 4) i;
SELECT item_id, neighbor_id, similarity, support, rank
  FROM media_reco.item_similarity('one_user', k => 2) ORDER BY item_id, rank;

-- a single item, an empty table, only NULL rows: no neighbours, no error
CREATE TABLE one_item AS SELECT u AS user_id, 5 AS item_id FROM generate_series(1, 10) u;
SELECT count(*) FROM media_reco.item_similarity('one_item');
CREATE TABLE empty_src (user_id int, item_id int);
SELECT count(*) FROM media_reco.item_similarity('empty_src');
INSERT INTO empty_src VALUES (NULL, 1), (1, NULL);
SELECT count(*) FROM media_reco.item_similarity('empty_src');

-- negative weights: similarity <= 0 is never a neighbour
CREATE TABLE neg (user_id int, item_id int, w numeric);
INSERT INTO neg VALUES (1, 1, 1), (1, 2, -1), (2, 1, 1), (2, 3, 1), (3, 2, 1), (3, 3, 1);
SELECT item_id, neighbor_id, round(similarity::numeric, 12) AS similarity, support
  FROM media_reco.item_similarity('neg', weight_col => 'w') ORDER BY item_id, rank;

-- zero weights: the item has users (support counts) but no norm, so no cosine neighbours
CREATE TABLE zero_w (user_id int, item_id int, w real);
INSERT INTO zero_w VALUES (1, 1, 0), (1, 2, 1), (2, 2, 1), (2, 3, 1);
SELECT item_id, neighbor_id, similarity, support FROM media_reco.item_similarity('zero_w', weight_col => 'w') ORDER BY 1, 2;
SELECT item_id, neighbor_id, similarity, support FROM media_reco.item_similarity('zero_w', metric => 'jaccard') ORDER BY 1, 2;

-- column types: smallint/integer/bigint ids, any numeric weight; custom column names
CREATE TABLE typed (viewer smallint, show bigint, secs numeric(10,2), rating real, n int8);
INSERT INTO typed VALUES (1, 100, 10.5, 4, 1), (1, 200, 3, 5, 2), (2, 100, 7.25, 3, 1), (2, 200, 1, 1, 1),
                         (2, 300, 2, 2, 3), (3, 300, 9, 4, 1), (3, 100, 1, 5, 1);
SELECT a.item_id, a.neighbor_id, round(a.similarity::numeric, 10) AS by_numeric,
       round(b.similarity::numeric, 10) AS by_real, round(c.similarity::numeric, 10) AS by_int8
  FROM media_reco.item_similarity('typed', 'viewer', 'show', 'secs') a
  JOIN media_reco.item_similarity('typed', 'viewer', 'show', 'rating') b USING (item_id, neighbor_id)
  JOIN media_reco.item_similarity('typed', 'viewer', 'show', 'n') c USING (item_id, neighbor_id)
 ORDER BY 1, 2;

-- sources: view, materialized view, partitioned table, all give the table's answer
CREATE VIEW tiny_v AS SELECT user_id AS u, item_id AS i FROM tiny;
CREATE MATERIALIZED VIEW tiny_mv AS SELECT * FROM tiny;
CREATE TABLE tiny_p (user_id int, item_id int, w float8) PARTITION BY RANGE (user_id);
CREATE TABLE tiny_p1 PARTITION OF tiny_p FOR VALUES FROM (0) TO (2);
CREATE TABLE tiny_p2 PARTITION OF tiny_p FOR VALUES FROM (2) TO (100);
INSERT INTO tiny_p SELECT * FROM tiny WHERE user_id IS NOT NULL;
SELECT (SELECT array_agg(row(item_id, neighbor_id, similarity, support, rank) ORDER BY item_id, rank)
          FROM media_reco.item_similarity('tiny_v', 'u', 'i')) =
       (SELECT array_agg(row(item_id, neighbor_id, similarity, support, rank) ORDER BY item_id, rank)
          FROM media_reco.item_similarity('tiny')) AS view_ok,
       (SELECT array_agg(row(item_id, neighbor_id, similarity, support, rank) ORDER BY item_id, rank)
          FROM media_reco.item_similarity('tiny_mv')) =
       (SELECT array_agg(row(item_id, neighbor_id, similarity, support, rank) ORDER BY item_id, rank)
          FROM media_reco.item_similarity('tiny')) AS matview_ok,
       (SELECT array_agg(row(item_id, neighbor_id, similarity, support, rank) ORDER BY item_id, rank)
          FROM media_reco.item_similarity('tiny_p', weight_col => 'w')) =
       (SELECT array_agg(row(item_id, neighbor_id, similarity, support, rank) ORDER BY item_id, rank)
          FROM media_reco.item_similarity('tiny', weight_col => 'w')) AS partitioned_ok;

-- results do not depend on the number of threads or on the physical row order
CREATE TABLE gen AS SELECT * FROM media_reco.synthetic_interactions(400, 200, 6000, 3);
CREATE TABLE gen_shuffled AS SELECT * FROM gen ORDER BY md5(user_id::text || item_id::text || watched_at::text);
SET media_reco.threads = 1;
CREATE TABLE sim_t1 AS SELECT * FROM media_reco.item_similarity('gen', weight_col => 'plays', k => 20);
SET media_reco.threads = 4;
CREATE TABLE sim_t4 AS SELECT * FROM media_reco.item_similarity('gen_shuffled', weight_col => 'plays', k => 20);
RESET media_reco.threads;
SELECT count(*) > 3000 AS many_rows,
       count(*) FILTER (WHERE a IS DISTINCT FROM b) AS differences
  FROM (SELECT row(s1.*)::text a, row(s4.*)::text b
          FROM sim_t1 s1 FULL JOIN sim_t4 s4 USING (item_id, rank)) d;

-- every similarity is in (0, 1], ranks are 1..n without gaps, ordered by similarity then id
SELECT bool_and(similarity > 0 AND similarity <= 1) AS in_range,
       bool_and(rank = rn) AS dense_ranks,
       bool_and(prev_sim IS NULL OR prev_sim > similarity OR (prev_sim = similarity AND prev_nb < neighbor_id)) AS ordered
  FROM (SELECT *, row_number() OVER w AS rn, lag(similarity) OVER w AS prev_sim, lag(neighbor_id) OVER w AS prev_nb
          FROM sim_t1 WINDOW w AS (PARTITION BY item_id ORDER BY rank)) x;

-- extreme magnitudes: cosine is scale-free, from 1e-160 to 1e300 (no underflow or overflow)
CREATE TABLE scaled (scale float8, user_id int, item_id int, w float8);
INSERT INTO scaled
SELECT s, u, i, s * CASE i WHEN 3 THEN 5 - u ELSE u * i END
  FROM (VALUES (1e-160::float8), (1e-80), (1), (1e200), (1e300)) v(s),
       generate_series(1, 4) u, generate_series(1, 3) i;
CREATE VIEW scaled_tiny AS SELECT * FROM scaled WHERE scale = 1e-160;
CREATE VIEW scaled_small AS SELECT * FROM scaled WHERE scale = 1e-80;
CREATE VIEW scaled_one AS SELECT * FROM scaled WHERE scale = 1;
CREATE VIEW scaled_big AS SELECT * FROM scaled WHERE scale = 1e200;
CREATE VIEW scaled_huge AS SELECT * FROM scaled WHERE scale = 1e300;
SELECT v, item_id, neighbor_id, round(similarity::numeric, 12) AS similarity
  FROM unnest(ARRAY['scaled_tiny', 'scaled_small', 'scaled_one', 'scaled_big', 'scaled_huge']) v,
       LATERAL media_reco.item_similarity(v::regclass, weight_col => 'w')
 WHERE item_id = 1
 ORDER BY item_id, rank, v;

-- an inheritance parent is read with its children, as a query on it would
CREATE TABLE inh_parent (user_id int, item_id int);
CREATE TABLE inh_child () INHERITS (inh_parent);
INSERT INTO inh_parent VALUES (1, 1), (1, 2);
INSERT INTO inh_child VALUES (2, 1), (2, 2), (2, 3);
SELECT item_id, neighbor_id, support FROM media_reco.item_similarity('inh_parent') ORDER BY 1, 2;

-- row-level security applies: a role sees only its rows, and so does the computation
CREATE TABLE rls_src (user_id int, item_id int, region text);
INSERT INTO rls_src VALUES (1, 1, 'eu'), (1, 2, 'eu'), (2, 1, 'us'), (2, 3, 'us'), (3, 1, 'eu'), (3, 3, 'us');
ALTER TABLE rls_src ENABLE ROW LEVEL SECURITY;
CREATE ROLE regress_media_reco_eu;
GRANT USAGE ON SCHEMA media_reco TO regress_media_reco_eu;
GRANT SELECT ON rls_src TO regress_media_reco_eu;
CREATE POLICY eu_only ON rls_src FOR SELECT TO regress_media_reco_eu USING (region = 'eu');
SELECT item_id, neighbor_id, support FROM media_reco.item_similarity('rls_src') ORDER BY 1, 2;
SET ROLE regress_media_reco_eu;
SELECT item_id, neighbor_id, support FROM media_reco.item_similarity('rls_src') ORDER BY 1, 2;
RESET ROLE;
DROP POLICY eu_only ON rls_src;
DROP OWNED BY regress_media_reco_eu;
DROP ROLE regress_media_reco_eu;

-- ids of any size and sign give the same lists (small dense ids are mapped
-- through a direct array, others through a hash; both paths mix here)
CREATE TABLE id_map AS
SELECT i AS orig, CASE WHEN i % 3 = 0 THEN i ELSE i * 1000000000000 + 7 END AS wide FROM generate_series(1, 200) i;
CREATE TABLE gen_wide AS
SELECT CASE WHEN user_id % 2 = 0 THEN -user_id ELSE user_id * 4000000000 END AS user_id,
       m.wide AS item_id, plays
  FROM gen JOIN id_map m ON m.orig = gen.item_id;
SELECT count(*) AS items_compared,
       count(*) FILTER (WHERE a.sims IS DISTINCT FROM b.sims) AS differences
  FROM (SELECT item_id, array_agg(round(similarity::numeric, 12) ORDER BY rank) sims
          FROM media_reco.item_similarity('gen', weight_col => 'plays', k => 20) GROUP BY 1) a
  FULL JOIN (SELECT m.orig AS item_id, array_agg(round(s.similarity::numeric, 12) ORDER BY s.rank) sims
               FROM media_reco.item_similarity('gen_wide', weight_col => 'plays', k => 20) s
               JOIN id_map m ON m.wide = s.item_id GROUP BY 1) b USING (item_id);

-- summing duplicates does not depend on the physical row order: the two tables hold the same rows,
-- item 2's duplicates stored in another order (0.1 + 0.2 + 0.3 and 0.3 + 0.2 + 0.1 differ in the last
-- bit, which decided between items 2 and 3 before); both give the same neighbour, bit for bit
CREATE TABLE dup_o1 (u int, i int, w float8);
CREATE TABLE dup_o2 (u int, i int, w float8);
INSERT INTO dup_o1 VALUES (1, 1, 1), (2, 1, 1), (1, 2, 0.1), (1, 2, 0.2), (1, 2, 0.3), (2, 2, 1), (1, 3, 0.6), (2, 3, 1);
INSERT INTO dup_o2 VALUES (1, 1, 1), (2, 1, 1), (1, 2, 0.3), (1, 2, 0.2), (1, 2, 0.1), (2, 2, 1), (1, 3, 0.6), (2, 3, 1);
SELECT a.neighbor_id AS o1, b.neighbor_id AS o2, a.similarity = b.similarity AS same_bits
  FROM media_reco.item_similarity('dup_o1', 'u', 'i', 'w', k => 1) a
  JOIN media_reco.item_similarity('dup_o2', 'u', 'i', 'w', k => 1) b USING (item_id)
 WHERE item_id = 1;
SELECT count(*) AS pairs, count(*) FILTER (WHERE a.similarity IS DISTINCT FROM b.similarity) AS differ
  FROM media_reco.item_similarity('dup_o1', 'u', 'i', 'w', k => 10) a
  FULL JOIN media_reco.item_similarity('dup_o2', 'u', 'i', 'w', k => 10) b USING (item_id, neighbor_id);

-- exact ties stay exact whatever the magnitudes elsewhere: one unrelated huge weight changes no list
CREATE TABLE tie_src AS SELECT user_id, item_id, plays FROM media_reco.synthetic_interactions(300, 80, 4000, 3);
CREATE TABLE tie_src_big AS SELECT user_id, item_id, plays::float8 AS plays FROM tie_src;
INSERT INTO tie_src_big VALUES (999999, 999999, 1e60);
SELECT count(*) AS items,
       count(*) FILTER (WHERE a.l IS DISTINCT FROM b.l) AS lists_differ
  FROM (SELECT item_id, array_agg(neighbor_id || ':' || similarity ORDER BY rank) l
          FROM media_reco.item_similarity('tie_src', weight_col => 'plays', k => 10) GROUP BY 1) a
  JOIN (SELECT item_id, array_agg(neighbor_id || ':' || similarity ORDER BY rank) l
          FROM media_reco.item_similarity('tie_src_big', weight_col => 'plays', k => 10) GROUP BY 1) b USING (item_id);

-- centring a constant row gives exact zeros, not a rounding residue that would become a perfect
-- neighbour: items 1 and 2 have one weight each (0.1), so pearson has nothing to say about them
CREATE TABLE flat_src (u int, i int, w float8);
INSERT INTO flat_src VALUES (1, 1, 0.1), (2, 1, 0.1), (3, 1, 0.1), (1, 2, 0.1), (2, 2, 0.1), (3, 2, 0.1),
  (1, 3, 0.9), (2, 3, 0.2), (3, 3, 0.5), (1, 4, 0.8), (2, 4, 0.3), (3, 4, 0.5);
SELECT item_id, neighbor_id, round(similarity::numeric, 6) AS similarity
  FROM media_reco.item_similarity('flat_src', 'u', 'i', 'w', 'pearson') ORDER BY 1, 2;
-- and every user giving 0.7 to everything: adjusted cosine finds nothing
CREATE VIEW flat_all AS SELECT u, i, 0.7::float8 AS w FROM flat_src;
SELECT count(*) AS pairs FROM media_reco.item_similarity('flat_all', 'u', 'i', 'w', 'adjusted_cosine');

-- weights whose sum overflows: the mean is taken on scaled weights, so 1e308 gives what 1e300 gives
CREATE TABLE huge_src (u int, i int, w float8);
INSERT INTO huge_src VALUES (1, 1, 1e308), (2, 1, 1e308), (1, 2, 1), (2, 2, 2), (1, 3, 1), (2, 3, 2), (3, 1, 5), (3, 3, 1);
CREATE VIEW huge_src_300 AS SELECT u, i, CASE WHEN w = 1e308 THEN 1e300 ELSE w END AS w FROM huge_src;
SELECT m AS metric,
       (SELECT array_agg(item_id || '>' || neighbor_id ORDER BY item_id, rank)
          FROM media_reco.item_similarity('huge_src', 'u', 'i', 'w', m)) AS with_1e308,
       (SELECT array_agg(item_id || '>' || neighbor_id ORDER BY item_id, rank)
          FROM media_reco.item_similarity('huge_src_300', 'u', 'i', 'w', m)) AS with_1e300
  FROM unnest(ARRAY['pearson', 'adjusted_cosine']) m;
-- a weight minus its mean that does not fit is an error, not a silently missing neighbour
CREATE TABLE huge_src2 (u int, i int, w float8);
INSERT INTO huge_src2 VALUES (1, 1, 1.7e308), (1, 2, -1.7e308), (1, 3, -1.7e308), (2, 1, 1), (2, 2, 1);
SELECT * FROM media_reco.item_similarity('huge_src2', 'u', 'i', 'w', 'adjusted_cosine');

-- bm25 with K1 = 0 keeps only idf: a zero weight stays 0 (the formula would be 0/0) and every
-- positive weight counts alike, so the lists equal those of the same table with weights 0 or 1
CREATE TABLE bm_zero AS SELECT user_id, item_id, (plays % 4)::float8 AS w FROM tie_src;
CREATE VIEW bm_binary AS SELECT user_id, item_id, (w > 0)::int::float8 AS w FROM bm_zero;
SELECT count(*) AS pairs,
       count(*) FILTER (WHERE b.similarity IS DISTINCT FROM a.similarity) AS differ
  FROM media_reco.item_similarity('bm_zero', weight_col => 'w', metric => 'bm25', bm25_k1 => 0) a
  FULL JOIN media_reco.item_similarity('bm_binary', weight_col => 'w', metric => 'bm25', bm25_k1 => 0) b
    USING (item_id, neighbor_id);

-- a NULL weight is ignored (README: the row is not read at all), which is not the same as a weight
-- of 0: a zero-weight row makes its user one of the item's users (support, jaccard, conditional,
-- bm25's idf and user count) and one more weight in the user's and the item's means (adjusted
-- cosine, pearson). Every metric against the definition written out in SQL (as in
-- similarity_reference.sql), from a table (read directly) and from a view (read through SPI);
-- the same reference with NULL read as 0 differs from it on every metric, so this data tells
-- ignoring from zero
CREATE TABLE nw (user_id int, item_id int, w float8);
INSERT INTO nw VALUES
  (1, 10, 1), (1, 20, 2), (1, 30, 1), (1, 10, NULL),   -- a NULL duplicate adds nothing
  (2, 10, 2), (2, 20, 1),
  (3, 20, 1), (3, 30, 3),
  (4, 10, 1), (4, 30, NULL),                           -- 4 is not a user of 30
  (5, 20, NULL), (5, 40, NULL),                        -- 5 is not a user at all
  (6, 30, 0), (6, 40, 1),                              -- 6 is a user of 30 and of 40
  (7, 10, 1), (7, 40, 2);
CREATE VIEW nw_v AS SELECT * FROM nw;
CREATE FUNCTION pg_temp.nw_ref(metric text, null_as_zero bool)
RETURNS TABLE (item_id bigint, neighbor_id bigint, similarity float8, support bigint) LANGUAGE sql AS $$
  WITH w0 AS (
    SELECT user_id::bigint AS u, item_id::bigint AS i, sum(CASE WHEN null_as_zero THEN coalesce(w, 0) ELSE w END) AS w
      FROM nw WHERE null_as_zero OR w IS NOT NULL GROUP BY 1, 2),
  -- bm25, K1 = 100, B = 0.8: idf(i) = ln N - ln(1 + |U(i)|), len(u) = sum of u's weights, 0 stays 0
  bm AS (
    SELECT u, i, w, sum(w) OVER (PARTITION BY u) AS len, count(*) OVER (PARTITION BY i) AS ucount,
           (SELECT count(DISTINCT u) FROM w0) AS n_users FROM w0),
  bmw AS (
    SELECT u, i, CASE WHEN w = 0 THEN 0 ELSE
                 w * 101.0 / (100.0 * (0.2 + 0.8 * len / (SELECT avg(l) FROM (SELECT DISTINCT u, len AS l FROM bm) x)) + w)
                 * (ln(n_users) - ln(1 + ucount)) END AS w FROM bm),
  c AS (
    SELECT u, i, CASE metric WHEN 'adjusted_cosine' THEN w - avg(w) OVER (PARTITION BY u)
                             WHEN 'pearson' THEN w - avg(w) OVER (PARTITION BY i)
                             ELSE w END AS w FROM w0 WHERE metric <> 'bm25'
    UNION ALL SELECT u, i, w FROM bmw WHERE metric = 'bm25'),
  n AS (SELECT i, sqrt(sum(w * w)) AS norm, count(*) AS cnt FROM c GROUP BY i),
  p AS (SELECT a.i, b.i AS j, sum(a.w * b.w) AS dot, count(*) AS sup FROM c a JOIN c b ON a.u = b.u AND a.i <> b.i GROUP BY 1, 2),
  s AS (SELECT p.i, p.j, p.sup,
               CASE metric WHEN 'jaccard' THEN p.sup::float8 / (na.cnt + nb.cnt - p.sup)
                           WHEN 'conditional' THEN p.sup::float8 / na.cnt
                           WHEN 'bm25' THEN p.dot
                           ELSE p.dot / nullif(na.norm * nb.norm, 0) END AS sim
          FROM p JOIN n na ON na.i = p.i JOIN n nb ON nb.i = p.j)
  SELECT i, j, sim, sup FROM s WHERE sim > 1e-12 $$;
CREATE FUNCTION pg_temp.nw_differ(a regclass, metric text) RETURNS bigint LANGUAGE sql AS $$
  SELECT count(*) FROM (SELECT item_id, neighbor_id, similarity, support
                          FROM media_reco.item_similarity(a, weight_col => 'w', metric => metric, k => 100)) m
  FULL JOIN pg_temp.nw_ref(metric, false) r USING (item_id, neighbor_id)
  WHERE m.support IS DISTINCT FROM r.support OR NOT abs(m.similarity - r.similarity) < 1e-12 $$;
SELECT metric, (SELECT count(*) FROM pg_temp.nw_ref(metric, false)) AS pairs,
       pg_temp.nw_differ('nw', metric) AS table_differs, pg_temp.nw_differ('nw_v', metric) AS view_differs,
       (SELECT count(*) FROM pg_temp.nw_ref(metric, false) a FULL JOIN pg_temp.nw_ref(metric, true) b USING (item_id, neighbor_id)
         WHERE a.support IS DISTINCT FROM b.support OR NOT abs(a.similarity - b.similarity) < 1e-12) AS null_as_zero_would_differ
FROM unnest(ARRAY['cosine', 'jaccard', 'conditional', 'adjusted_cosine', 'pearson', 'bm25']) metric;
-- by hand for jaccard: U(10) = {1,2,4,7}, U(20) = {1,2,3}, U(30) = {1,3,6}, U(40) = {6,7}
-- (with NULL as 0, 4 would join U(30) and 5 U(20) and U(40))
SELECT item_id, neighbor_id, round(similarity::numeric, 12) AS similarity, support
  FROM media_reco.item_similarity('nw', weight_col => 'w', metric => 'jaccard') ORDER BY item_id, rank;
SELECT round(2 / 5.0, 12) AS j_10_20, round(1 / 6.0, 12) AS j_10_30, round(1 / 5.0, 12) AS j_10_40,
       round(2 / 4.0, 12) AS j_20_30, round(1 / 4.0, 12) AS j_30_40;
