-- Implicit ALS (train_als, recommend_als, similar_items_als, als_user_vector):
--   L = Σ over every (user, item) pair of c (p − x_u·y_i)² + λ (Σ|x_u|² + Σ|y_i|²),
--   c = 1 + α w, p = 1 for a stored pair, c = 1, p = 0 otherwise.
-- The stored user factors against an independent PL/pgSQL solve of the normal equations written
-- out over every item (Gaussian elimination); the loss against SQL over every pair; the loss
-- decreasing; thread-count and row-order independence; recalculate against the same PL/pgSQL
-- solve of a changed history; the serving functions against brute-force SQL; atomic retrain and
-- the cache; every error branch.
\i test/sql/expect_error.sql
CREATE SCHEMA als_test;
SET search_path = als_test, public;
SET client_min_messages = warning;   -- train_als NOTICEs carry timings
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

-- x solving (Σ_j c_j y_j y_jᵀ + λI) x = Σ_j c_j p_j y_j over EVERY item j of the model's stored
-- item factors, the history given as a query of (item, weight); Gaussian elimination with
-- partial pivoting in float8.  History items the model does not know are ignored.
CREATE FUNCTION pg_temp.ref_solve(model text, hist_sql text) RETURNS float8[]
LANGUAGE plpgsql AS $$
DECLARE
  f int; lam float8; alp float8;
  a float8[]; b float8[]; x float8[];
  rec record; c float8; p float8; piv int; t float8; q float8;
BEGIN
  SELECT m.factors, (m.options->>'regularization')::float8, (m.options->>'alpha')::float8
    INTO f, lam, alp FROM media_reco.als_models m WHERE m.name = model;
  a := array_fill(0::float8, ARRAY[f * f]);
  b := array_fill(0::float8, ARRAY[f]);
  FOR rec IN EXECUTE format('SELECT y.factors::float8[] AS y, h.w FROM media_reco.item_factors y'
                            ' LEFT JOIN (SELECT item::bigint, w::float8 FROM (%s) h0(item, w)) h ON h.item = y.item_id WHERE y.model = %L', hist_sql, model) LOOP
    c := CASE WHEN rec.w IS NULL THEN 1 ELSE 1 + alp * rec.w END;
    p := CASE WHEN rec.w IS NULL THEN 0 ELSE 1 END;
    FOR r IN 1..f LOOP
      FOR s IN 1..f LOOP
        a[(r - 1) * f + s] := a[(r - 1) * f + s] + c * rec.y[r] * rec.y[s];
      END LOOP;
      b[r] := b[r] + c * p * rec.y[r];
    END LOOP;
  END LOOP;
  FOR r IN 1..f LOOP a[(r - 1) * f + r] := a[(r - 1) * f + r] + lam; END LOOP;
  FOR col IN 1..f LOOP
    piv := col;
    FOR r IN col + 1..f LOOP
      IF abs(a[(r - 1) * f + col]) > abs(a[(piv - 1) * f + col]) THEN piv := r; END IF;
    END LOOP;
    IF piv <> col THEN
      FOR s IN 1..f LOOP
        t := a[(col - 1) * f + s]; a[(col - 1) * f + s] := a[(piv - 1) * f + s]; a[(piv - 1) * f + s] := t;
      END LOOP;
      t := b[col]; b[col] := b[piv]; b[piv] := t;
    END IF;
    FOR r IN col + 1..f LOOP
      q := a[(r - 1) * f + col] / a[(col - 1) * f + col];
      FOR s IN col..f LOOP a[(r - 1) * f + s] := a[(r - 1) * f + s] - q * a[(col - 1) * f + s]; END LOOP;
      b[r] := b[r] - q * b[col];
    END LOOP;
  END LOOP;
  x := array_fill(0::float8, ARRAY[f]);
  FOR r IN REVERSE f..1 LOOP
    t := b[r];
    FOR s IN r + 1..f LOOP t := t - a[(r - 1) * f + s] * x[s]; END LOOP;
    x[r] := t / a[(r - 1) * f + r];
  END LOOP;
  RETURN x;
END $$;
CREATE FUNCTION pg_temp.dot(a float8[], b float8[]) RETURNS float8 LANGUAGE sql IMMUTABLE
AS $$ SELECT sum(x * y) FROM unnest(a, b) AS t(x, y) $$;
CREATE FUNCTION pg_temp.maxdiff(a float8[], b float8[]) RETURNS float8 LANGUAGE sql IMMUTABLE
AS $$ SELECT max(abs(x - y)) FROM unnest(a, b) AS t(x, y) $$;

-- ---------------------------------------------------------------------------
-- 1. A tiny case: 5 users, 5 items, weights summed over duplicates, NULL rows skipped.
--    Items 4 and 5 have the same users and weights, so (exact solves) the same factors and
--    the same scores: ties go to the smaller id.
CREATE TABLE tiny (u bigint, i bigint, w float8);
INSERT INTO tiny VALUES (1, 1, 2), (1, 2, 1), (2, 2, 1), (2, 3, 3), (3, 1, 1), (3, 3, 1), (3, 4, 1),
  (3, 5, 1), (4, 1, 1), (4, 4, 2), (4, 5, 2), (5, 2, 1), (1, 1, 1), (NULL, 1, 1), (5, NULL, 1), (5, 3, NULL);
SELECT model_name, users, items, factors, iterations
  FROM media_reco.train_als('tiny', 'tiny', 'u', 'i', 'w',
       '{"factors": 2, "regularization": 0.5, "alpha": 2, "iterations": 6, "cg_steps": 0, "seed": 7}');
SELECT name, source, user_col, item_col, weight_col, options, users, items, factors, iterations,
       array_length(loss, 1) AS losses, train_loss = loss[6] AS last
  FROM media_reco.als_models;
SELECT (SELECT count(*) FROM media_reco.item_factors WHERE model = 'tiny') AS item_rows,
       (SELECT count(*) FROM media_reco.user_factors WHERE model = 'tiny') AS user_rows,
       (SELECT bool_and(array_length(factors, 1) = 2) FROM media_reco.item_factors) AS two_each;
-- each stored x_u is the exact solve against the stored y (reals: 1e-5)
SELECT x.user_id,
       pg_temp.maxdiff(x.factors::float8[],
                       pg_temp.ref_solve('tiny', format('SELECT i, sum(w) FROM tiny WHERE u = %s AND i IS NOT NULL AND w IS NOT NULL GROUP BY i', x.user_id))) < 1e-5 AS exact
  FROM media_reco.user_factors x WHERE model = 'tiny' ORDER BY 1;
-- the loss, summed in SQL over all 25 pairs from the stored factors
WITH w AS (SELECT u, i, sum(w) AS w FROM tiny WHERE u IS NOT NULL AND i IS NOT NULL AND w IS NOT NULL GROUP BY 1, 2),
     s AS (SELECT x.user_id, y.item_id, pg_temp.dot(x.factors::float8[], y.factors::float8[]) AS s, w.w
             FROM media_reco.user_factors x CROSS JOIN media_reco.item_factors y
             LEFT JOIN w ON w.u = x.user_id AND w.i = y.item_id
            WHERE x.model = 'tiny' AND y.model = 'tiny'),
     l AS (SELECT sum(CASE WHEN w IS NULL THEN s * s ELSE (1 + 2 * w) * (1 - s) ^ 2 END)
                  + 0.5 * (SELECT sum(pg_temp.dot(factors::float8[], factors::float8[])) FROM media_reco.user_factors WHERE model = 'tiny')
                  + 0.5 * (SELECT sum(pg_temp.dot(factors::float8[], factors::float8[])) FROM media_reco.item_factors WHERE model = 'tiny') AS l
             FROM s)
SELECT abs(l - (SELECT train_loss FROM media_reco.als_models WHERE name = 'tiny')) / l < 1e-5 AS loss_matches FROM l;
-- every iteration lowers the loss
SELECT bool_and(loss[g] < loss[g - 1]) AS decreasing FROM media_reco.als_models, generate_series(2, 6) g WHERE name = 'tiny';
-- items 4 and 5: the same factors
SELECT a.factors = b.factors AS same FROM media_reco.item_factors a, media_reco.item_factors b
 WHERE a.model = 'tiny' AND b.model = 'tiny' AND a.item_id = 4 AND b.item_id = 5;
-- user 2 has seen 2 and 3: items 1, 4, 5 by score (4 before 5 on the tie)
SELECT item_id, rank, reason FROM media_reco.recommend_als('tiny', 2);
SELECT r.item_id, abs(r.score - pg_temp.dot(x.factors::float8[], y.factors::float8[])) < 1e-6 AS score_is_dot
  FROM media_reco.recommend_als('tiny', 2) r, media_reco.user_factors x, media_reco.item_factors y
 WHERE x.model = 'tiny' AND x.user_id = 2 AND y.model = 'tiny' AND y.item_id = r.item_id ORDER BY r.rank;
-- filters: exclude, only (an unknown id and a seen one are fine), k
SELECT item_id, rank FROM media_reco.recommend_als('tiny', 2, exclude => '{1}');
SELECT item_id, rank FROM media_reco.recommend_als('tiny', 2, "only" => '{5, 3, 99}');
SELECT item_id, rank FROM media_reco.recommend_als('tiny', 2, k => 1);
SELECT count(*) FROM media_reco.recommend_als('tiny', 2, "only" => '{}');
-- a user without history: nothing, or the popular items with fallback (NULL means 'none')
SELECT count(*) FROM media_reco.recommend_als('tiny', 99);
SELECT count(*) FROM media_reco.recommend_als('tiny', 99, fallback => 'none');
SELECT item_id, score, rank, reason FROM media_reco.recommend_als('tiny', 99, k => 3, fallback => 'popular');
-- fallback fills behind the ALS rows when the filters leave fewer than k
SELECT item_id, score IS NULL AS no_score, rank, reason FROM media_reco.recommend_als('tiny', 2, k => 3, "only" => '{1, 2, 3, 4}', fallback => 'popular');
-- similar_items_als: cosine of item factors, itself excluded, ties to the smaller id
SELECT s.neighbor_id, s.rank,
       abs(s.similarity - pg_temp.dot(a.factors::float8[], b.factors::float8[])
           / sqrt(pg_temp.dot(a.factors::float8[], a.factors::float8[]) * pg_temp.dot(b.factors::float8[], b.factors::float8[]))) < 1e-6 AS is_cosine
  FROM media_reco.similar_items_als('tiny', 1, 10) s, media_reco.item_factors a, media_reco.item_factors b
 WHERE a.model = 'tiny' AND a.item_id = 1 AND b.model = 'tiny' AND b.item_id = s.neighbor_id ORDER BY s.rank;
SELECT neighbor_id, rank FROM media_reco.similar_items_als('tiny', 4, 1);
SELECT count(*) FROM media_reco.similar_items_als('tiny', 99);

-- ---------------------------------------------------------------------------
-- 2. recalculate: x_u solved from the CURRENT history against the stored item factors.
-- unchanged history: the stored x_u (up to the reals)
SELECT pg_temp.maxdiff(media_reco.als_user_vector('tiny', 3, true), media_reco.als_user_vector('tiny', 3)) < 1e-5 AS same;
-- a new view and a new user: the PL/pgSQL solve of the changed history, to rounding
INSERT INTO tiny VALUES (2, 4, 1), (2, 99, 5), (7, 1, 1), (7, 5, 3);
SELECT pg_temp.maxdiff(media_reco.als_user_vector('tiny', 2, true),
                       pg_temp.ref_solve('tiny', 'SELECT i, sum(w) FROM tiny WHERE u = 2 AND i IS NOT NULL AND w IS NOT NULL GROUP BY i')) < 1e-9 AS user2,
       pg_temp.maxdiff(media_reco.als_user_vector('tiny', 7),
                       pg_temp.ref_solve('tiny', 'SELECT i, sum(w) FROM tiny WHERE u = 7 GROUP BY i')) < 1e-9 AS new_user7;
-- the stored x_2 is unchanged without recalculate, but the new view is excluded at once
SELECT pg_temp.maxdiff(media_reco.als_user_vector('tiny', 2), x.factors::float8[]) = 0 AS stored
  FROM media_reco.user_factors x WHERE model = 'tiny' AND user_id = 2;
SELECT item_id, rank FROM media_reco.recommend_als('tiny', 2);
-- recalculated scores are x · y with the solved x; user 7 is recalculated automatically
SELECT r.item_id, r.rank,
       abs(r.score - pg_temp.dot(pg_temp.ref_solve('tiny', 'SELECT i, sum(w) FROM tiny WHERE u = 2 AND i IS NOT NULL AND w IS NOT NULL GROUP BY i'),
                                 y.factors::float8[])) < 1e-6 AS score_ok
  FROM media_reco.recommend_als('tiny', 2, recalculate => true) r, media_reco.item_factors y
 WHERE y.model = 'tiny' AND y.item_id = r.item_id ORDER BY r.rank;
-- item 99 is new (not in the model): with "only", the fallback lists it behind the ALS rows
SELECT item_id, score IS NULL AS no_score, rank, reason FROM media_reco.recommend_als('tiny', 7, k => 3, "only" => '{99, 4}', fallback => 'popular');
SELECT (SELECT array_agg(item_id ORDER BY rank) FROM media_reco.recommend_als('tiny', 7)) =
       (SELECT array_agg(item_id ORDER BY rank) FROM media_reco.recommend_als('tiny', 7, recalculate => true)) AS auto;
-- a history of items the model does not know: no vector, no rows
INSERT INTO tiny VALUES (8, 99, 1);
SELECT media_reco.als_user_vector('tiny', 8) IS NULL AS none, (SELECT count(*) FROM media_reco.recommend_als('tiny', 8)) AS n;

-- ---------------------------------------------------------------------------
-- 3. Generated data: the loss decreases, exact and CG; the stored x_u are exact solves
--    (cg_steps = 0); thread count and row order change no bit.
CREATE TABLE gen AS SELECT * FROM media_reco.synthetic_interactions(200, 60, 3000, 11);
CREATE TABLE gen_rev AS SELECT * FROM gen ORDER BY watched_at DESC, user_id DESC, item_id;
SELECT model_name, users, items FROM media_reco.train_als('g_exact', 'gen', weight_col => 'plays',
       options => '{"factors": 3, "iterations": 8, "cg_steps": 0, "seed": 3}');
SELECT model_name, users, items FROM media_reco.train_als('g_cg', 'gen', weight_col => 'plays',
       options => '{"factors": 8, "iterations": 8, "seed": 3}');
SELECT name, bool_and(loss[g] < loss[g - 1]) AS decreasing
  FROM media_reco.als_models, generate_series(2, 8) g WHERE name LIKE 'g\_%' GROUP BY name ORDER BY name;
SELECT max(pg_temp.maxdiff(x.factors::float8[],
                           pg_temp.ref_solve('g_exact', format('SELECT item_id, sum(plays) FROM gen WHERE user_id = %s GROUP BY 1', x.user_id)))) < 1e-4 AS exact
  FROM media_reco.user_factors x WHERE model = 'g_exact' AND user_id % 20 = 0;
SET media_reco.threads = 1;
SELECT 1 FROM media_reco.train_als('g_t1', 'gen', weight_col => 'plays', options => '{"factors": 8, "iterations": 4, "seed": 5}');
SET media_reco.threads = 4;
SELECT 1 FROM media_reco.train_als('g_t4', 'gen', weight_col => 'plays', options => '{"factors": 8, "iterations": 4, "seed": 5}');
SELECT 1 FROM media_reco.train_als('g_rev', 'gen_rev', weight_col => 'plays', options => '{"factors": 8, "iterations": 4, "seed": 5}');
RESET media_reco.threads;
SELECT b.name, a.loss = b.loss AS same_loss,
       (SELECT count(*) FROM media_reco.item_factors p JOIN media_reco.item_factors q USING (item_id)
         WHERE p.model = 'g_t1' AND q.model = b.name AND p.factors = q.factors) AS same_items,
       (SELECT count(*) FROM media_reco.user_factors p JOIN media_reco.user_factors q USING (user_id)
         WHERE p.model = 'g_t1' AND q.model = b.name AND p.factors = q.factors) AS same_users
  FROM media_reco.als_models a, media_reco.als_models b
 WHERE a.name = 'g_t1' AND b.name IN ('g_t4', 'g_rev') ORDER BY 1;
-- recommend_als against brute force for a few users: scores are x · y, nothing seen, and no
-- unlisted unseen item scores above the last listed one
WITH r AS (SELECT u.user_id, r.* FROM generate_series(1, 200, 37) u(user_id),
             LATERAL media_reco.recommend_als('g_cg', u.user_id, 10) r),
     d AS (SELECT x.user_id, y.item_id, pg_temp.dot(x.factors::float8[], y.factors::float8[]) AS s
             FROM media_reco.user_factors x, media_reco.item_factors y
            WHERE x.model = 'g_cg' AND y.model = 'g_cg' AND x.user_id IN (SELECT user_id FROM r))
SELECT count(*) AS rows,
       bool_and(abs(r.score - d.s) < 1e-5) AS scores,
       bool_and(NOT EXISTS (SELECT 1 FROM gen WHERE gen.user_id = r.user_id AND gen.item_id = r.item_id)) AS unseen,
       bool_and(NOT EXISTS (SELECT 1 FROM d d2 WHERE d2.user_id = r.user_id AND d2.s > r.score + 1e-5
                              AND d2.item_id NOT IN (SELECT item_id FROM gen WHERE gen.user_id = r.user_id)
                              AND d2.item_id NOT IN (SELECT r2.item_id FROM r r2 WHERE r2.user_id = r.user_id))) AS best
  FROM r JOIN d USING (user_id, item_id);
-- time decay through the options: weights 0.5^(age / half_life), as for recommenders
CREATE TABLE dec AS SELECT user_id, item_id, plays, now() - (item_id || ' days')::interval AS t FROM gen WHERE user_id <= 50;
SELECT users FROM media_reco.train_als('g_dec', 'dec', weight_col => 'plays',
       options => '{"factors": 3, "iterations": 3, "cg_steps": 0, "time_col": "t", "half_life": "30 days"}');
SELECT options FROM media_reco.als_models WHERE name = 'g_dec';
SELECT pg_temp.maxdiff(media_reco.als_user_vector('g_dec', 7, true),
         pg_temp.ref_solve('g_dec', $$SELECT item_id, sum(plays * 0.5 ^ (extract(epoch FROM now() - t)::float8 / (30 * 86400))) FROM dec WHERE user_id = 7 GROUP BY 1$$)) < 1e-9 AS decayed;

-- recommend_all_als: the rows of one recommend_als call per user, for every user of the source
-- (users 7 and 8 are absent from training: 7 is recalculated, 8 knows no item) and for a subset
SELECT (SELECT count(*) FROM media_reco.recommend_all_als('tiny', 3)) AS rows,
       (SELECT count(*) FROM (SELECT DISTINCT u FROM tiny WHERE u IS NOT NULL) u, LATERAL media_reco.recommend_als('tiny', u.u, 3) r) AS lateral_rows,
       (SELECT count(*) FROM (SELECT * FROM media_reco.recommend_all_als('tiny', 3)
          EXCEPT SELECT u.u, r.item_id, r.score, r.rank FROM (SELECT DISTINCT u FROM tiny WHERE u IS NOT NULL) u,
                 LATERAL media_reco.recommend_als('tiny', u.u, 3) r) d) AS differ;
SELECT (SELECT count(*) FROM media_reco.recommend_all_als('g_cg', 10)) AS rows,
       (SELECT count(*) FROM (SELECT DISTINCT user_id FROM gen) u, LATERAL media_reco.recommend_als('g_cg', u.user_id, 10) r) AS lateral_rows,
       (SELECT count(*) FROM (SELECT * FROM media_reco.recommend_all_als('g_cg', 10)
          EXCEPT ALL SELECT u.user_id, r.item_id, r.score, r.rank FROM (SELECT DISTINCT user_id FROM gen) u,
                 LATERAL media_reco.recommend_als('g_cg', u.user_id, 10) r) d) AS differ;
SELECT user_id, count(*) FROM media_reco.recommend_all_als('g_cg', 2, '{5, 7, 123456}') GROUP BY 1 ORDER BY 1;
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.recommend_all_als('nope')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.recommend_all_als('g_cg', 0)$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.recommend_all_als('g_cg', NULL)$$);

-- evaluate_als: evaluate's metrics over recommend_als's lists, against the same computed in SQL
SELECT * FROM media_reco.split_interactions('gen', 'gen_train', 'gen_test', 'random', 0.2, seed => 4);
SELECT users FROM media_reco.train_als('g_ev', 'gen_train', weight_col => 'plays', options => '{"factors": 8, "iterations": 4}');
CREATE TEMP TABLE ev AS SELECT * FROM media_reco.evaluate_als('g_ev', 'gen_test', 5);
WITH rel AS (SELECT t.user_id, array_agg(DISTINCT t.item_id) AS items FROM gen_test t
              WHERE NOT EXISTS (SELECT 1 FROM gen_train s WHERE s.user_id = t.user_id AND s.item_id = t.item_id)
              GROUP BY t.user_id),
     l AS (SELECT r.items AS rel, coalesce((SELECT array_agg(m.item_id ORDER BY m.rank) FROM media_reco.recommend_als('g_ev', r.user_id, 5) m), '{}') AS rec FROM rel r)
SELECT abs((SELECT value FROM ev WHERE metric = 'precision@5') - avg(media_reco.precision_at_k(rec, rel, 5))) < 1e-12 AS precision_ok,
       abs((SELECT value FROM ev WHERE metric = 'ndcg@5') - avg(media_reco.ndcg_at_k(rec, rel, 5))) < 1e-12 AS ndcg_ok,
       (SELECT value FROM ev WHERE metric = 'users') = count(*) AS users_ok
  FROM l;
SELECT string_agg(metric, ' ' ORDER BY metric) FROM ev;
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.evaluate_als('nope', 'gen_test')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.evaluate_als('g_ev', NULL)$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.evaluate_als('g_ev', 'gen_train')$$);

-- ---------------------------------------------------------------------------
-- 4. Retraining: atomic (a rolled-back retrain leaves the old model), and the per-backend
--    cache of item factors follows the new row version.
CREATE TEMP TABLE before AS SELECT array_agg(item_id ORDER BY rank) AS items FROM media_reco.recommend_als('g_cg', 5);
BEGIN;
SELECT users FROM media_reco.train_als('g_cg', 'tiny', 'u', 'i', 'w', '{"factors": 2}');
SELECT count(*) FROM media_reco.item_factors WHERE model = 'g_cg';
ROLLBACK;
SELECT count(*) AS items_back, (SELECT factors FROM media_reco.als_models WHERE name = 'g_cg') AS factors,
       (SELECT items FROM before) = (SELECT array_agg(item_id ORDER BY rank) FROM media_reco.recommend_als('g_cg', 5)) AS same_list
  FROM media_reco.item_factors WHERE model = 'g_cg';
SELECT 1 FROM media_reco.train_als('g_cg', 'gen', weight_col => 'plays', options => '{"factors": 8, "iterations": 8, "seed": 99}');
WITH r AS (SELECT * FROM media_reco.recommend_als('g_cg', 5, 3))
SELECT bool_and(abs(r.score - pg_temp.dot(x.factors::float8[], y.factors::float8[])) < 1e-5) AS new_factors_served
  FROM r, media_reco.user_factors x, media_reco.item_factors y
 WHERE x.model = 'g_cg' AND x.user_id = 5 AND y.model = 'g_cg' AND y.item_id = r.item_id;
SELECT media_reco.drop_als_model('g_rev');
SELECT (SELECT count(*) FROM media_reco.als_models WHERE name = 'g_rev') + (SELECT count(*) FROM media_reco.item_factors WHERE model = 'g_rev')
       + (SELECT count(*) FROM media_reco.user_factors WHERE model = 'g_rev') AS left_over;

-- ---------------------------------------------------------------------------
-- 5. Errors.
-- NULL arguments
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.train_als(NULL, 'tiny')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.train_als('x', NULL)$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.train_als('x', 'tiny', NULL)$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.train_als('x', 'tiny', 'u', 'i', options => NULL)$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.recommend_als(NULL, 1)$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.recommend_als('tiny', NULL)$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.recommend_als('tiny', 1, NULL)$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.recommend_als('tiny', 1, recalculate => NULL)$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.similar_items_als('tiny', NULL)$$);
SELECT pg_temp.expect_error($$SELECT media_reco.als_user_vector('tiny', 1, NULL)$$);
SELECT pg_temp.expect_error($$SELECT media_reco.drop_als_model(NULL)$$);
-- unknown models and bad names
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.recommend_als('nope', 1)$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.similar_items_als('nope', 1)$$);
SELECT pg_temp.expect_error($$SELECT media_reco.als_user_vector('nope', 1)$$);
SELECT pg_temp.expect_error($$SELECT media_reco.drop_als_model('nope')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.train_als('', 'tiny', 'u', 'i')$$);
SELECT pg_temp.expect_error(format($$SELECT * FROM media_reco.train_als(%L, 'tiny', 'u', 'i')$$, repeat('x', 64)));
-- options
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.train_als('x', 'tiny', 'u', 'i', options => '[1]')$$);
SELECT * FROM pg_temp.error_of($$SELECT * FROM media_reco.train_als('x', 'tiny', 'u', 'i', options => '{"factor": 8}')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.train_als('x', 'tiny', 'u', 'i', options => '{"factors": 0}')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.train_als('x', 'tiny', 'u', 'i', options => '{"factors": 1.5}')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.train_als('x', 'tiny', 'u', 'i', options => '{"factors": 2000}')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.train_als('x', 'tiny', 'u', 'i', options => '{"regularization": 0}')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.train_als('x', 'tiny', 'u', 'i', options => '{"regularization": "a"}')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.train_als('x', 'tiny', 'u', 'i', options => '{"alpha": -1}')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.train_als('x', 'tiny', 'u', 'i', options => '{"iterations": 0}')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.train_als('x', 'tiny', 'u', 'i', options => '{"cg_steps": -1}')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.train_als('x', 'tiny', 'u', 'i', options => '{"seed": "s"}')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.train_als('x', 'dec', options => '{"time_col": "t"}')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.train_als('x', 'dec', options => '{"time_col": "t", "half_life": "-1 day"}')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.train_als('x', 'dec', options => '{"time_col": "nope", "half_life": "1 day"}')$$);
-- columns
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.train_als('x', 'tiny', 'nope', 'i')$$);
CREATE TABLE txt (u bigint, i bigint, w text);
INSERT INTO txt VALUES (1, 1, 'a');
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.train_als('x', 'txt', 'u', 'i', 'w')$$);
-- weights: a pair summing to <= 0 is an error naming the column
CREATE TABLE neg (u bigint, i bigint, w float8);
INSERT INTO neg VALUES (1, 1, 1), (2, 1, 2), (2, 2, -1), (2, 2, 1);
SELECT * FROM pg_temp.error_of($$SELECT * FROM media_reco.train_als('x', 'neg', 'u', 'i', 'w')$$);
UPDATE neg SET w = -3 WHERE w = 1 AND u = 2;
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.train_als('x', 'neg', 'u', 'i', 'w')$$);
INSERT INTO neg VALUES (3, 3, 'NaN');
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.train_als('x', 'neg', 'u', 'i', 'w')$$);
-- an empty source (or only NULL rows)
CREATE TABLE empty (u bigint, i bigint, w float8);
INSERT INTO empty VALUES (NULL, 1, 1), (1, 1, NULL);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.train_als('x', 'empty', 'u', 'i', 'w')$$);
-- memory: 200 users x 1024 factors do not fit 1 MB
SET maintenance_work_mem = '1MB';
SELECT code, msg, det LIKE '%200 users and 60 items with 1024 factors need about % bytes%the limit is 1.0 MB.' AS det_ok, hnt
  FROM pg_temp.error_of($$SELECT * FROM media_reco.train_als('x', 'gen', options => '{"factors": 1024}')$$);
RESET maintenance_work_mem;
-- serving arguments
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.recommend_als('tiny', 1, 0)$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.recommend_als('tiny', 1, fallback => 'best')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.similar_items_als('tiny', 1, 0)$$);
-- nothing of the failed trainings was stored
SELECT string_agg(name, ', ' ORDER BY name) FROM media_reco.als_models;
-- a dropped source: serving needs the live history (42P01 naming it); similar items do not
DROP TABLE dec;
SELECT source IS NULL AS cleared, dropped_source FROM media_reco.als_models WHERE name = 'g_dec';
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.recommend_als('g_dec', 7)$$);
SELECT pg_temp.expect_error($$SELECT media_reco.als_user_vector('g_dec', 7, true)$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.evaluate_als('g_dec', 'gen_test')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.recommend_all_als('g_dec')$$);
SELECT count(*) FROM media_reco.similar_items_als('g_dec', 1, 5);
-- a corrupted factor row
UPDATE media_reco.item_factors SET factors = '{1}' WHERE model = 'tiny' AND item_id = 1;
SELECT 1 FROM media_reco.train_als('tiny2', 'tiny', 'u', 'i', 'w', '{"factors": 2, "iterations": 1}');
UPDATE media_reco.item_factors SET factors = '{1}' WHERE model = 'tiny2' AND item_id = 1;
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.recommend_als('tiny2', 1)$$);

-- the event trigger function cannot be called directly
SELECT split_part(pg_temp.expect_error($$SELECT media_reco.mark_dropped_als_sources()$$), ' (', 1);
RESET client_min_messages;
DROP SCHEMA als_test CASCADE;
SELECT media_reco.drop_als_model(name) FROM media_reco.als_models ORDER BY name;
