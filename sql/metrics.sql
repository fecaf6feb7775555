-- evaluation: ranking metrics over arrays, roc_auc and log_loss aggregates
SET extra_float_digits = 0;

-- recommended 1..5, relevant {2, 5, 9}: hits at ranks 2 and 5
SELECT media_reco.precision_at_k('{1,2,3,4,5}', '{2,5,9}', 3) AS p3,          -- 1/3
       media_reco.precision_at_k('{1,2,3,4,5}', '{2,5,9}', 5) AS p5,          -- 2/5
       media_reco.precision_at_k('{1,2,3,4,5}', '{2,5,9}', 10) AS p10,        -- 2/10: k beyond the list
       media_reco.recall_at_k('{1,2,3,4,5}', '{2,5,9}', 3) AS r3,             -- 1/3
       media_reco.recall_at_k('{1,2,3,4,5}', '{2,5,9}', 5) AS r5,             -- 2/3
       media_reco.hit_at_k('{1,2,3,4,5}', '{2,5,9}', 1) AS h1,                -- 0
       media_reco.hit_at_k('{1,2,3,4,5}', '{2,5,9}', 2) AS h2;                -- 1
SELECT round(media_reco.ndcg_at_k('{1,2,3,4,5}', '{2,5,9}', 5)::numeric, 12) AS ndcg5,
       round(((1 / log(2, 3) + 1 / log(2, 6)) / (1 + 1 / log(2, 3) + 1 / log(2, 4)))::numeric, 12) AS by_hand,
       media_reco.average_precision_at_k('{1,2,3,4,5}', '{2,5,9}', 5) AS ap5,  -- (1/2 + 2/5) / 3
       media_reco.reciprocal_rank('{1,2,3,4,5}', '{2,5,9}') AS rr;             -- 1/2

-- a perfect list scores 1 everywhere
SELECT media_reco.precision_at_k('{7,8}', '{8,7}', 2), media_reco.recall_at_k('{7,8}', '{8,7}', 2),
       media_reco.ndcg_at_k('{7,8}', '{8,7}', 2), media_reco.average_precision_at_k('{7,8}', '{8,7}', 2),
       media_reco.reciprocal_rank('{7,8}', '{8,7}');

-- duplicates in recommended count once, at their first rank: nothing exceeds 1
SELECT media_reco.precision_at_k('{2,2,2}', '{2,3}', 3) AS p3,                -- 1/3
       round(media_reco.ndcg_at_k('{2,2,2}', '{2,3}', 3)::numeric, 12) AS ndcg3, -- 1 / (1 + 1/log2(3))
       round((1 / (1 + 1 / log(2, 3)))::numeric, 12) AS by_hand,
       media_reco.average_precision_at_k('{2,2,2}', '{2,3}', 3) AS ap3,       -- 1 / 2
       media_reco.recall_at_k('{2,2,3}', '{2,3,3}', 2) AS r2;                 -- 1/2: relevant is a set

-- NULLs: a NULL recommendation keeps its rank but never matches; NULL relevant ids are ignored
SELECT media_reco.reciprocal_rank('{NULL,2}', '{2}') AS rr,                   -- 1/2
       media_reco.precision_at_k('{NULL,NULL}', '{1}', 2) AS p2,              -- 0
       media_reco.recall_at_k('{1,2}', '{2,NULL}', 2) AS r2;                  -- 1
-- NULL arrays give NULL (STRICT); an empty relevant set gives NULL, so avg() skips that user
SELECT media_reco.precision_at_k(NULL, '{1}', 3) IS NULL AS null_rec,
       media_reco.ndcg_at_k('{1}', NULL, 3) IS NULL AS null_rel,
       media_reco.recall_at_k('{1,2}', '{}', 3) IS NULL AS empty_rel,
       media_reco.reciprocal_rank('{1}', '{NULL}') IS NULL AS only_null_rel,
       media_reco.hit_at_k('{}', '{1}', 3) AS empty_rec;
SELECT avg(media_reco.recall_at_k(rec, rel, 2)) FROM (VALUES ('{1,2}'::bigint[], '{1}'::bigint[]),
                                                              ('{3,4}', '{}'), ('{5,6}', '{9}')) v(rec, rel);
-- multi-dimensional arrays are read in storage order
SELECT media_reco.reciprocal_rank('{{1,2},{3,4}}', '{3}');
-- errors
SELECT media_reco.precision_at_k('{1}', '{1}', 0);
SELECT media_reco.ndcg_at_k('{1}', '{1}', -3);

-- roc_auc against the pairwise definition on generated scores in [0, 5] (ties included)
CREATE TABLE scored AS
SELECT i, round((random_normal)::numeric, 1)::float8 AS score, (i % 3 = 0 OR i % 7 = 0) AS label
  FROM (SELECT i, (sin(i * 12.9898) * 43758.5453 - floor(sin(i * 12.9898) * 43758.5453)) * 4
               + CASE WHEN i % 3 = 0 OR i % 7 = 0 THEN 1 ELSE 0 END AS random_normal
          FROM generate_series(1, 3000) i) x;
INSERT INTO scored VALUES (0, NULL, true), (-1, 0.5, NULL);   -- skipped
SELECT round(media_reco.roc_auc(score, label)::numeric, 12) AS auc,
       round((SELECT (count(*) FILTER (WHERE p.score > n.score) + 0.5 * count(*) FILTER (WHERE p.score = n.score))::numeric
                     / count(*)
                FROM scored p, scored n WHERE p.label AND NOT n.label AND p.score IS NOT NULL
                 AND n.score IS NOT NULL), 12) AS pairwise
  FROM scored;
-- the same through a parallel plan (combine, serialize, deserialize)
SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
EXPLAIN (COSTS OFF) SELECT media_reco.roc_auc(score, label) FROM scored;
SELECT round(media_reco.roc_auc(score, label)::numeric, 12) AS auc_parallel FROM scored;
SELECT round(media_reco.log_loss(score / 5, label)::numeric, 12) AS log_loss_parallel FROM scored;
-- workers that see only NULL rows hand over no state (this crashed the serial function once)
CREATE TABLE unlabelled AS SELECT i::float8 AS score, NULL::boolean AS label FROM generate_series(1, 20000) i;
ALTER TABLE unlabelled SET (parallel_workers = 2);
SELECT media_reco.roc_auc(score, label) IS NULL AS auc_null, media_reco.log_loss(0.5, label) IS NULL AS log_loss_null
  FROM unlabelled;
UPDATE unlabelled SET label = (score > 19995) WHERE score > 19990;
SELECT media_reco.roc_auc(score, label) AS auc_few_labels FROM unlabelled;
RESET parallel_setup_cost; RESET parallel_tuple_cost; RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;
SELECT round(media_reco.log_loss(score / 5, label)::numeric, 12) AS log_loss,
       round(avg(CASE WHEN label THEN -ln(least(greatest(score / 5, 1e-15), 1 - 1e-15))
                      ELSE -ln(1 - least(greatest(score / 5, 1e-15), 1 - 1e-15)) END)::numeric, 12) AS by_formula
  FROM scored WHERE score IS NOT NULL AND label IS NOT NULL;
-- hand-checked small cases; a single class or no rows gives NULL
SELECT media_reco.roc_auc(s, l) FROM (VALUES (0.9, true), (0.8, false), (0.7, true), (0.1, false)) v(s, l);  -- 3/4
SELECT media_reco.roc_auc(s, l) FROM (VALUES (0.5, true), (0.5, false)) v(s, l);                             -- tie: 1/2
SELECT media_reco.roc_auc(s, l) IS NULL AS single_class FROM (VALUES (0.5, true), (0.7, true)) v(s, l);
SELECT media_reco.roc_auc(s, l) IS NULL AS no_rows FROM (VALUES (0.5, true)) v(s, l) WHERE false;
SELECT round(media_reco.log_loss(p, l)::numeric, 12), round(((-ln(0.9) - ln(0.8)) / 2)::numeric, 12)
  FROM (VALUES (0.9, true), (0.2, false)) v(p, l);
SELECT media_reco.log_loss(p, l) IS NULL AS no_rows FROM (VALUES (0.5, true)) v(p, l) WHERE false;
SELECT round(media_reco.log_loss(p, l)::numeric, 6) AS clipped FROM (VALUES (0.0, true)) v(p, l);  -- -ln(1e-15)
-- errors
SELECT media_reco.roc_auc(s, l) FROM (VALUES ('NaN'::float8, true)) v(s, l);
SELECT media_reco.log_loss(p, l) FROM (VALUES (1.5, true)) v(p, l);
SELECT media_reco.log_loss(p, l) FROM (VALUES ('NaN'::float8, false)) v(p, l);

-- the aggregates' support functions: log_loss's work on their own (on a copy of the state)
SELECT media_reco.log_loss_accum('{0,0}', 0.5, true) = ARRAY[-ln(0.5), 1]::float8[] AS accum_ok,
       media_reco.log_loss_accum('{1,2}', NULL, true) AS null_row_skipped,
       media_reco.log_loss_combine('{1,1}', '{2,3}') AS combined,
       media_reco.log_loss_final('{3,4}') AS mean, media_reco.log_loss_final('{0,0}') IS NULL AS empty;
SELECT media_reco.log_loss_accum(NULL, 0.5, true);
SELECT media_reco.log_loss_accum('{1,2,3}', 0.5, true);
SELECT media_reco.log_loss_final('{1,NULL}');
-- roc_auc's take `internal` state and cannot be called from SQL; they are wired for parallel
-- aggregation (the forced parallel plan above goes through all of them)
SELECT aggtransfn, aggfinalfn, aggcombinefn, aggserialfn, aggdeserialfn
  FROM pg_aggregate WHERE aggfnoid = 'media_reco.roc_auc'::regproc;
SELECT media_reco.roc_auc_final(NULL);

-- confusion_matrix: rows = actual, columns = predicted, classes the union of both, ascending
SELECT jsonb_pretty(media_reco.confusion_matrix(p, a))
FROM (VALUES (0.0, 0.0), (0, 0), (1, 0), (1, 1), (1, 1), (0, 1), (2, 1), (NULL, 1), (1, NULL), (-0.0, 0)) v(p, a);
-- a class only ever predicted has support 0 and no recall; one never predicted has no precision
SELECT c ->> 'class' AS class, c ->> 'precision' AS precision, c ->> 'recall' AS recall, c ->> 'support' AS support
FROM jsonb_array_elements(
       (SELECT media_reco.confusion_matrix(p, a) FROM (VALUES (5.0, 1.0), (1, 1), (1, 3)) v(p, a)) -> 'per_class') c;
-- against a brute-force count, serial and through a forced parallel plan
CREATE TABLE preds AS SELECT (i * 7 % 5)::float8 AS p, (i * 3 % 5)::float8 AS a FROM generate_series(1, 30000) i;
ALTER TABLE preds SET (parallel_workers = 2);
CREATE TABLE brute AS
SELECT jsonb_agg(row_counts ORDER BY a) AS matrix FROM (
  SELECT a, jsonb_agg((SELECT count(*) FROM preds x WHERE x.a = c.a AND x.p = d.p) ORDER BY d.p) AS row_counts
  FROM (SELECT DISTINCT a FROM preds) c, (SELECT DISTINCT p FROM preds) d GROUP BY a) s;
SELECT media_reco.confusion_matrix(p, a) -> 'matrix' = (SELECT matrix FROM brute) AS serial_matches FROM preds;
SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
EXPLAIN (COSTS OFF) SELECT media_reco.confusion_matrix(p, a) FROM preds;
SELECT media_reco.confusion_matrix(p, a) -> 'matrix' = (SELECT matrix FROM brute) AS parallel_matches,
       (media_reco.confusion_matrix(p, a) ->> 'total')::int AS total FROM preds;
SELECT media_reco.confusion_matrix(NULL::float8, a) IS NULL AS all_null FROM preds;
RESET parallel_setup_cost; RESET parallel_tuple_cost; RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;
SELECT media_reco.confusion_matrix(p, a) IS NULL AS empty_is_null FROM preds WHERE false;
\i test/sql/expect_error.sql
SELECT pg_temp.expect_error($$SELECT media_reco.confusion_matrix('NaN', 1)$$);
SELECT pg_temp.expect_error($$SELECT media_reco.confusion_matrix(1, 'Infinity')$$);
SELECT pg_temp.expect_error($$SELECT media_reco.confusion_matrix(i, 0) FROM generate_series(1, 5000) i$$);
-- 250 classes with scattered predictions (62,500 pairs) are fine
SELECT jsonb_array_length(m -> 'classes') AS classes, (m ->> 'total')::int AS total
FROM (SELECT media_reco.confusion_matrix((i * 7919) % 250, i % 250) AS m FROM generate_series(1, 100000) i) s;

-- |relevant| > k: the ranking metrics against their definitions written out in SQL (README,
-- Evaluation): a hit is the first occurrence of a non-NULL relevant id at rank r <= k; ndcg's ideal
-- DCG runs over min(k, |relevant|) positions; average precision sums precision@r over the hits and
-- divides by min(k, |relevant|). Every metric of the extension is compared with this reference.
CREATE FUNCTION pg_temp.ref_hits(rec bigint[], rel bigint[], k int) RETURNS TABLE (r int, nth int)
LANGUAGE sql IMMUTABLE AS $$
  SELECT o::int, (row_number() OVER (ORDER BY o))::int
    FROM unnest(rec) WITH ORDINALITY u(id, o)
   WHERE o <= k AND id IS NOT NULL AND id = ANY (rel)
     AND NOT EXISTS (SELECT 1 FROM unnest(rec) WITH ORDINALITY v(id2, o2) WHERE v.id2 = u.id AND v.o2 < u.o) $$;
CREATE FUNCTION pg_temp.ref_nrel(rel bigint[]) RETURNS int LANGUAGE sql IMMUTABLE AS $$
  SELECT count(DISTINCT x)::int FROM unnest(rel) x $$;
CREATE FUNCTION pg_temp.ref_metrics(rec bigint[], rel bigint[], k int,
    OUT p float8, OUT r float8, OUT h float8, OUT ndcg float8, OUT ap float8, OUT rr float8)
LANGUAGE sql IMMUTABLE AS $$
  SELECT coalesce((SELECT count(*) FROM pg_temp.ref_hits(rec, rel, k)), 0)::float8 / k,
         coalesce((SELECT count(*) FROM pg_temp.ref_hits(rec, rel, k)), 0)::float8 / pg_temp.ref_nrel(rel),
         (EXISTS (SELECT 1 FROM pg_temp.ref_hits(rec, rel, k)))::int::float8,
         coalesce((SELECT sum(1 / (ln(r + 1) / ln(2))) FROM pg_temp.ref_hits(rec, rel, k)), 0)
           / (SELECT sum(1 / (ln(i + 1) / ln(2))) FROM generate_series(1, least(k, pg_temp.ref_nrel(rel))) i),
         coalesce((SELECT sum(nth::float8 / r) FROM pg_temp.ref_hits(rec, rel, k)), 0)
           / least(k, pg_temp.ref_nrel(rel)),
         coalesce((SELECT 1.0::float8 / min(r) FROM pg_temp.ref_hits(rec, rel, cardinality(rec) + 1)), 0)
   WHERE pg_temp.ref_nrel(rel) > 0 $$;
CREATE TABLE rank_cases (name text, rec bigint[], rel bigint[], k int);
INSERT INTO rank_cases VALUES
  -- 7 relevant, k = 3: hits at 1 and 3; ndcg = (1 + 1/2) / (1 + 1/log2(3) + 1/2), ap = (1 + 2/3) / 3
  ('7 relevant, k 3',        '{1,2,3,4,5}', '{1,3,5,7,9,11,13}', 3),
  -- a list shorter than k, |relevant| > k: the ideal still has k positions, ap divides by k
  ('short list, 10 rel, k 5', '{4,9}', '{1,2,3,4,5,6,7,8,9,10}', 5),
  -- duplicates: 3 counts at rank 1 only; 5 hits at rank 3; 8 is beyond k
  ('duplicates, k 4',        '{3,3,5,3,8}', '{3,5,8,10,11,12}', 4),
  -- NULLs keep their ranks, NULL and repeated relevant ids do not count in |relevant| (5)
  ('NULLs, k 4',             '{NULL,2,NULL,4,6}', '{2,4,6,8,10,NULL,2}', 4),
  -- |relevant| = 1000 >> k: a perfect top 3 scores 1 on ndcg and ap, recall 3/1000
  ('1000 rel, perfect k 3',  '{5,1,3,100,7}', ARRAY(SELECT generate_series(1, 1999, 2)::bigint), 3),
  ('1000 rel, k 5',          '{5,1,3,100,7}', ARRAY(SELECT generate_series(1, 1999, 2)::bigint), 5),
  ('1000 rel, miss first',   '{2,1,4,3}', ARRAY(SELECT generate_series(1, 1999, 2)::bigint), 2),
  ('no hit, 4 rel, k 2',     '{7,8}', '{1,2,3,4}', 2),
  -- and |relevant| <= k, as before
  ('3 rel, k 5',             '{1,2,3,4,5}', '{2,5,9}', 5),
  ('2 rel, k 10',            '{9,2,2,NULL,1}', '{1,2}', 10);
SELECT c.name,
       round(media_reco.ndcg_at_k(rec, rel, k)::numeric, 12) AS ndcg,
       round(ref.ndcg::numeric, 12) AS ref_ndcg,
       round(media_reco.average_precision_at_k(rec, rel, k)::numeric, 12) AS ap,
       round(ref.ap::numeric, 12) AS ref_ap,
       abs(media_reco.precision_at_k(rec, rel, k) - ref.p) < 1e-12
       AND abs(media_reco.recall_at_k(rec, rel, k) - ref.r) < 1e-12
       AND media_reco.hit_at_k(rec, rel, k) = ref.h
       AND abs(media_reco.reciprocal_rank(rec, rel) - ref.rr) < 1e-12 AS p_r_hit_rr_match
  FROM rank_cases c, LATERAL pg_temp.ref_metrics(rec, rel, k) ref
 ORDER BY c.name;
-- the first case by hand, independent of the reference too
SELECT round(media_reco.ndcg_at_k('{1,2,3,4,5}', '{1,3,5,7,9,11,13}', 3)::numeric, 12) AS ndcg,
       round(((1 + 0.5) / (1 + 1 / log(2, 3) + 0.5))::numeric, 12) AS by_hand,
       round(media_reco.average_precision_at_k('{1,2,3,4,5}', '{1,3,5,7,9,11,13}', 3)::numeric, 12) AS ap,
       round(((1 + 2 / 3.0) / 3)::numeric, 12) AS ap_by_hand;
-- 600 generated cases (ids 0..11, duplicates and NULLs in both arrays, k 1..8, |relevant| 1..12):
-- no metric differs from the reference; more than half have |relevant| > k
CREATE TABLE gen_cases AS
SELECT c,
       ARRAY(SELECT CASE WHEN abs(hashint4(c * 1000 + j)) % 9 = 0 THEN NULL ELSE abs(hashint4(c * 1000 + j + 500)) % 12 END
               FROM generate_series(1, 1 + abs(hashint4(c)) % 10) j)::bigint[] AS rec,
       ARRAY(SELECT CASE WHEN abs(hashint4(-c * 1000 - j)) % 11 = 0 THEN NULL ELSE abs(hashint4(-c * 1000 - j - 500)) % 12 END
               FROM generate_series(1, 1 + abs(hashint4(-c)) % 16) j)::bigint[] AS rel,
       1 + abs(hashint4(c + 77777)) % 8 AS k
  FROM generate_series(1, 600) c;
SELECT count(*) AS cases,
       count(*) FILTER (WHERE pg_temp.ref_nrel(rel) > k) AS rel_beyond_k,
       count(*) FILTER (WHERE ref.ndcg IS NULL) AS empty_relevant,
       count(*) FILTER (WHERE abs(media_reco.ndcg_at_k(rec, rel, k) - ref.ndcg) > 1e-12) AS ndcg_differ,
       count(*) FILTER (WHERE abs(media_reco.average_precision_at_k(rec, rel, k) - ref.ap) > 1e-12) AS ap_differ,
       count(*) FILTER (WHERE abs(media_reco.precision_at_k(rec, rel, k) - ref.p) > 1e-12) AS p_differ,
       count(*) FILTER (WHERE abs(media_reco.recall_at_k(rec, rel, k) - ref.r) > 1e-12) AS r_differ,
       count(*) FILTER (WHERE media_reco.hit_at_k(rec, rel, k) <> ref.h) AS hit_differ,
       count(*) FILTER (WHERE abs(media_reco.reciprocal_rank(rec, rel) - ref.rr) > 1e-12) AS rr_differ,
       count(*) FILTER (WHERE (media_reco.ndcg_at_k(rec, rel, k) IS NULL) <> (ref.ndcg IS NULL)) AS null_differ
  FROM gen_cases LEFT JOIN LATERAL pg_temp.ref_metrics(rec, rel, k) ref ON true;
