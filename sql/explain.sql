-- explain_prediction, explain_base_value, explain_completeness, shap_importance.
-- TreeSHAP itself is checked against brute force over all 2^M subsets of v(S) in
-- test/unit/test_treeshap.c; here: additivity on every row against predict_proba /
-- predict (computed by the prediction path, not by the explainer), exact zeros for a
-- feature never split on, the ranking rule, networks' completeness and the linear case,
-- shap_importance against the mean of explain_prediction over the same rows, bytes of
-- the old forest format, and every error with its SQLSTATE.
\i test/sql/expect_error.sql
CREATE SCHEMA explain_test;
SET search_path = explain_test, public;
SET maintenance_work_mem = '256MB';

-- a categorical column (plan), missing values (minutes), a boolean, an array column
-- (one feature per element), a constant column the trees can never split on
CREATE TABLE subs AS
SELECT i AS id,
       (ARRAY['basic', 'premium', 'family'])[1 + i * 7 % 3] AS plan,
       CASE WHEN i % 11 = 0 THEN NULL ELSE (i * 37 % 100)::float8 END AS minutes,
       i * 13 % 17 AS sessions,
       i % 5 = 0 AS active,
       ARRAY[(i * 3 % 10)::real, (i * 5 % 7)::real] AS genres,
       1.0::float8 AS constant,
       ((i * 37 % 100 > 50 AND i * 7 % 3 <> 1) OR i % 13 = 0 OR i % 11 = 0) AS churned,
       (i * 37 % 100) * 0.5 + (i * 7 % 3) * 10 + i * 13 % 17 + (i % 11 = 0)::int * 20 AS watch,
       i * 13 % 3 AS tier
FROM generate_series(1, 300) i;

SELECT model_name, rows, features, classes
FROM media_reco.train_forest('ex_churn', 'subs', 'churned',
       '{plan, minutes, sessions, active, genres, constant}', '{"n_trees": 30, "max_depth": 6, "seed": 1}');
SELECT model_name, rows, features, classes
FROM media_reco.train_forest('ex_tier', 'subs', 'tier',
       '{plan, minutes, sessions, active, genres, constant}', '{"n_trees": 20, "class_weight": "balanced", "seed": 2}');
SELECT model_name, rows, features, classes
FROM media_reco.train_forest('ex_watch', 'subs', 'watch',
       '{plan, minutes, sessions, active, genres, constant}', '{"task": "regression", "n_trees": 20, "seed": 3}');

-- one row per model feature, the array column per element, ranks 1..7 by |contribution|
SELECT feature, value, rank FROM media_reco.explain_prediction('ex_churn', (SELECT s FROM subs s WHERE id = 11))
ORDER BY rank;

-- the ranking rule on every row: |contribution| descending, ties by feature order
SELECT count(*) AS misordered
FROM subs s, LATERAL (SELECT e.*, lag(abs(contribution)) OVER (ORDER BY rank) AS prev,
                             array_position(m.feature_names, feature) AS pos,
                             lag(array_position(m.feature_names, feature)) OVER (ORDER BY rank) AS prevpos
                      FROM media_reco.explain_prediction('ex_churn', s) e, media_reco.models m
                      WHERE m.name = 'ex_churn') r
WHERE r.prev < abs(r.contribution) OR (r.prev = abs(r.contribution) AND r.prevpos > r.pos);

-- additivity on every row: base value + Σ contributions = predict_proba of the predicted
-- class (ties as predict), within 1e-9; for every class when one is named
CREATE FUNCTION additivity(mname text, cls float8 DEFAULT NULL) RETURNS TABLE(rows bigint, worst_ok boolean) AS $$
  SELECT count(*), max(abs(x.total - x.expected)) < 1e-9
  FROM subs s,
       LATERAL (SELECT coalesce(cls, media_reco.predict(mname, s)) AS c) pc,
       LATERAL (SELECT media_reco.explain_base_value(mname, pc.c)
                       + (SELECT sum(contribution) FROM media_reco.explain_prediction(mname, s, cls)) AS total,
                       (media_reco.predict_proba(mname, s))[array_position(m.classes, pc.c)] AS expected
                FROM media_reco.models m WHERE m.name = mname) x
$$ LANGUAGE sql;
SELECT * FROM additivity('ex_churn');
SELECT * FROM additivity('ex_churn', 0);
SELECT * FROM additivity('ex_churn', 1);
SELECT * FROM additivity('ex_tier');
SELECT * FROM additivity('ex_tier', 2);
-- regression: base value + Σ = predict
SELECT count(*) AS rows,
       max(abs(media_reco.explain_base_value('ex_watch')
               + (SELECT sum(contribution) FROM media_reco.explain_prediction('ex_watch', s))
               - media_reco.predict('ex_watch', s))) < 1e-9 AS additive
FROM subs s;
-- the feature array form gives the same contributions as the row form
SELECT count(*) AS differing
FROM subs s,
     LATERAL media_reco.explain_prediction('ex_watch', s) a
     JOIN LATERAL media_reco.explain_prediction('ex_watch',
          ARRAY[CASE s.plan WHEN 'basic' THEN 0 WHEN 'family' THEN 1 ELSE 2 END,
                s.minutes, s.sessions, s.active::int, s.genres[1], s.genres[2], s.constant]::float8[]) b
     USING (feature)
WHERE a.contribution <> b.contribution;
-- explain_completeness: TreeSHAP is exact
SELECT method, steps, abs(completeness_error) < 1e-9 AS exact, abs(output - media_reco.predict('ex_watch', s)) < 1e-12 AS output_is_predict
FROM subs s, LATERAL media_reco.explain_completeness('ex_watch', s) WHERE s.id = 5;

-- a feature no tree splits on gets exactly 0, on every row, every model
SELECT model, count(*) AS rows, bool_and(contribution = 0) AS all_zero
FROM subs s, unnest(ARRAY['ex_churn', 'ex_tier', 'ex_watch']) model,
     LATERAL media_reco.explain_prediction(model, s) e
WHERE e.feature = 'constant'
GROUP BY model ORDER BY model;

-- a missing value (minutes NULL) is reported as NULL and still explained
SELECT feature, value IS NULL AS missing, contribution <> 0 AS explained
FROM media_reco.explain_prediction('ex_watch', (SELECT s FROM subs s WHERE id = 11)) WHERE feature = 'minutes';

-- the base value is the cover-weighted mean of the training rows' leaves: with every
-- row in bag weighted 1 (no bootstrap), it is the training mean of the label
SELECT model_name FROM media_reco.train_forest('ex_nobag', 'subs', 'watch',
       '{plan, minutes, sessions}', '{"task": "regression", "n_trees": 5, "bootstrap": false, "max_features": 1, "seed": 4}');
SELECT abs(media_reco.explain_base_value('ex_nobag') - (SELECT avg(watch) FROM subs)) < 1e-9 AS base_is_mean;
-- and for a classifier without bootstrap, the base value of class c is its share of the rows
SELECT model_name FROM media_reco.train_forest('ex_nobag_c', 'subs', 'churned',
       '{plan, minutes, sessions}', '{"n_trees": 5, "bootstrap": false, "seed": 4}');
SELECT abs(media_reco.explain_base_value('ex_nobag_c', 1) - (SELECT avg(churned::int) FROM subs)) < 1e-12 AS base_is_share;

-- one model load for a LATERAL over the table
SELECT loads AS loads_before FROM media_reco.model_cache() WHERE model_name = 'ex_churn' \gset
SELECT count(*) FROM subs s, LATERAL media_reco.explain_prediction('ex_churn', s);
SELECT loads - :loads_before AS extra_loads FROM media_reco.model_cache() WHERE model_name = 'ex_churn';

-- shap_importance: every row when sample >= the row count, equal to the mean |contribution|
-- of explain_prediction (to each row's predicted class) over all rows
SELECT count(*) AS features,
       max(abs(i.importance - r.mean_abs)) < 1e-12 AS equal,
       bool_and(i.rank = r.rnk) AS same_ranks
FROM media_reco.shap_importance('ex_churn', 'subs', 1000) i
JOIN (SELECT feature, avg(abs(contribution)) AS mean_abs,
             rank() OVER (ORDER BY avg(abs(contribution)) DESC) AS rnk
      FROM subs s, LATERAL media_reco.explain_prediction('ex_churn', s) GROUP BY feature) r
USING (feature);
-- a sample of 40: the rows whose scan position has the 40 smallest hashint8extended(position, 7)
SELECT count(*) AS features, max(abs(i.importance - r.mean_abs)) < 1e-12 AS equal
FROM media_reco.shap_importance('ex_watch', 'subs', 40, 7) i
JOIN (SELECT feature, avg(abs(contribution)) AS mean_abs
      FROM (SELECT s FROM (SELECT s, row_number() OVER () AS pos FROM subs s) n
            ORDER BY hashint8extended(pos, 7), pos LIMIT 40) smp,
           LATERAL media_reco.explain_prediction('ex_watch', smp.s) GROUP BY feature) r
USING (feature);
-- seeded: the same seed the same result, another seed another sample
SELECT (SELECT array_agg(importance ORDER BY feature) FROM media_reco.shap_importance('ex_watch', 'subs', 40, 7))
     = (SELECT array_agg(importance ORDER BY feature) FROM media_reco.shap_importance('ex_watch', 'subs', 40, 7)) AS same_seed_same,
       (SELECT array_agg(importance ORDER BY feature) FROM media_reco.shap_importance('ex_watch', 'subs', 40, 7))
     <> (SELECT array_agg(importance ORDER BY feature) FROM media_reco.shap_importance('ex_watch', 'subs', 40, 8)) AS other_seed_other;

-- networks: integrated gradients.  Completeness within 1e-3 on every row at the default
-- steps, for the predicted class of a classifier and for regression
SELECT model_name FROM media_reco.train_mlp('ex_net', 'subs', 'tier',
       '{plan, minutes, sessions, active, genres}', '{"hidden": [16], "epochs": 30, "seed": 1}');
SELECT model_name FROM media_reco.train_mlp('ex_net_tanh', 'subs', 'churned',
       '{plan, minutes, sessions, active, genres}', '{"hidden": [16, 8], "activation": "tanh", "epochs": 30, "seed": 1}');
SELECT model_name FROM media_reco.train_mlp('ex_net_reg', 'subs', 'watch',
       '{plan, minutes, sessions, active, genres}', '{"task": "regression", "hidden": [16], "epochs": 30, "seed": 1}');
SHOW media_reco.explain_steps;
SELECT model, count(*) AS rows, max(abs(c.completeness_error)) < 1e-3 AS within_1e3,
       max(abs(c.contributions - (SELECT sum(contribution) FROM media_reco.explain_prediction(model, s)))) < 1e-12 AS sum_is_contributions,
       bool_and(c.method = 'integrated_gradients' AND c.steps = 64) AS method
FROM subs s, unnest(ARRAY['ex_net', 'ex_net_tanh']) model, LATERAL media_reco.explain_completeness(model, s) c
GROUP BY model ORDER BY model;
-- the output explained is predict_proba's probability of the predicted class; base value f(all inputs at their mean)
SELECT count(*) AS rows,
       max(abs(c.output - (media_reco.predict_proba('ex_net', s))[1 + media_reco.predict('ex_net', s)::int])) < 1e-12 AS output_ok,
       max(abs(c.base_value - media_reco.explain_base_value('ex_net', media_reco.predict('ex_net', s)))) < 1e-12 AS base_ok
FROM subs s, LATERAL media_reco.explain_completeness('ex_net', s) c;
SELECT count(*) AS rows, max(abs(c.completeness_error) / greatest(1, abs(c.output))) < 1e-3 AS within_1e3_relative
FROM subs s, LATERAL media_reco.explain_completeness('ex_net_reg', s) c;
-- the relu path is cut where a hidden unit changes sign: several pieces per row
SELECT min(c.pieces) >= 1 AND max(c.pieces) > 1 AS cut, max(c.pieces) <= 17 AS at_most_units_plus_1
FROM subs s, LATERAL media_reco.explain_completeness('ex_net', s) c;
SELECT max(c.pieces) = 1 AS one_piece FROM subs s, LATERAL media_reco.explain_completeness('ex_net_tanh', s) c;
-- the completeness error below 1e-3 at 4, 16 and 64 steps: the relu network is cut into
-- pieces on which the softmax is analytic, the tanh one is analytic on the whole path
CREATE FUNCTION ig_error(mname text, n int) RETURNS float8 AS $$
BEGIN
  PERFORM set_config('media_reco.explain_steps', n::text, true);
  RETURN (SELECT max(abs(c.completeness_error)) FROM subs s, LATERAL media_reco.explain_completeness(mname, s) c);
END $$ LANGUAGE plpgsql;
SELECT mname, n, ig_error(mname, n) < 1e-3 AS below_1e3
FROM unnest(ARRAY['ex_net', 'ex_net_tanh']) mname, unnest(ARRAY[4, 16, 64]) n ORDER BY 1, 2;
RESET media_reco.explain_steps;

-- a linear regression network: the attribution of a numeric input is exactly w · z at any
-- step count (the same bits at 1, 3, 64 and 1000 steps), and w · z is what predict adds
-- when that input alone leaves its mean (the others NULL, i.e. at their mean)
SELECT model_name FROM media_reco.train_mlp('ex_linear', 'subs', 'watch',
       '{minutes, sessions, active}', '{"task": "regression", "hidden": [], "epochs": 20, "seed": 1}');
CREATE TABLE lin_runs AS SELECT 0 AS steps, 0 AS id, ''::text AS feature, 0::float8 AS contribution LIMIT 0;
SET media_reco.explain_steps = 1;
INSERT INTO lin_runs SELECT 1, s.id, e.feature, e.contribution FROM subs s, LATERAL media_reco.explain_prediction('ex_linear', s) e;
SET media_reco.explain_steps = 3;
INSERT INTO lin_runs SELECT 3, s.id, e.feature, e.contribution FROM subs s, LATERAL media_reco.explain_prediction('ex_linear', s) e;
SET media_reco.explain_steps = 1000;
INSERT INTO lin_runs SELECT 1000, s.id, e.feature, e.contribution FROM subs s, LATERAL media_reco.explain_prediction('ex_linear', s) e;
RESET media_reco.explain_steps;
INSERT INTO lin_runs SELECT 64, s.id, e.feature, e.contribution FROM subs s, LATERAL media_reco.explain_prediction('ex_linear', s) e;
SELECT count(DISTINCT (id, feature)) AS pairs, bool_and(n = 1) AS identical_at_every_step_count
FROM (SELECT id, feature, count(DISTINCT contribution) AS n FROM lin_runs GROUP BY id, feature) g;
SELECT count(*) AS rows,
       max(abs(l.contribution - (media_reco.predict('ex_linear', ARRAY[s.minutes, NULL, NULL]::float8[])
                                 - media_reco.predict('ex_linear', ARRAY[NULL, NULL, NULL]::float8[])))) < 1e-9 AS minutes_is_wz,
       max(abs(c.completeness_error)) < 1e-9 AS complete
FROM subs s JOIN lin_runs l ON l.id = s.id AND l.steps = 64 AND l.feature = 'minutes',
     LATERAL media_reco.explain_completeness('ex_linear', s) c
WHERE s.minutes IS NOT NULL;

-- bytes of the old forest format (payload version 0, media_reco 0.4.0: test/fuzz/corpus/
-- fuzz_forest/v0-regression.model) still load and predict what the 0.4.0 code predicted
-- (-3.5, 14.892857142857142, 14.25 and 10.5, computed by main's forest_core.c), but
-- cannot be explained
SELECT media_reco.save_model('ex_v0', decode('4d524d31010001007007000000000000d09db32d0000000001000000030000000000000002000000e1f6a4ffefeed73fc00e5f879e81cf3fc081abbc4050d83f2b0000001600000000000000000025400100000001000000000000000000234002000000030000000000000000000cc0000000001d0000000000000000000cc0000000000500000000000000000025c0000000801100000000000000000000c001000000070000000000000000000440000000000b0000000000000000000000000000000000000000000000000023c000000000090000000000000000000000010000000000000000000000000000000200000000000000000000000000e0bf000000000d000000000000000000e0bf020000800f0000000000000000000000030000000000000000000000000000000400000000000000000000000000000005000000000000000000000000000000060000000000000000000000000025400200008013000000000000000000e03f0100008017000000000000000000f07f0200000015000000000000000000000009000000000000000000000000000000070000000000000000000000000000000800000000000000000000000000f07f0200000019000000000000000000f8bf000000001b00000000000000000000000a0000000000000000000000000000000b0000000000000000000000000000000c0000000000000000000000000000000d00000000000000000000000000f83f020000001f0000000000000000002140020000802300000000000000000000000e000000000000000000000000001ac0000000002100000000000000000000000f0000000000000000000000000000001000000000000000000000000000184000000000250000000000000000000000150000000000000000000000000000000000000027000000000000000000f07f000000002900000000000000000000001100000000000000000000000000000012000000000000000000000000000000130000000000000000000000000000001400000000000000000000000000f0bf0000000000000cc0abaaaaaaaaaa0ec0000000000000fc3f000000000000e83f0000000000001840000000000000000000000000000031400000000000002d400000000000001c40000000000000044025499224499227400000000000001240000000000000104000000000008039400000000000002f400000000000003640000000000000284000000000000029400000000000002240000000000000254000000000000000403100000019000000000000000000254001000000010000000000000000000c40000000000300000000000000000008c0000000001f000000000000000000f07f02000000050000000000000000000040020000001100000000000000000012c000000000070000000000000000001a40010000800d00000000000000000018c000000080090000000000000000002240020000800b0000000000000000000000000000000000000000000000000000000100000000000000000000000000000002000000000000000000000000000000030000000000000000000000000021c0010000000f0000000000000000000000060000000000000000000000000000000400000000000000000000000000000005000000000000000000000000001ac0020000001300000000000000000008400100008019000000000000000000f8bf0100000015000000000000000000f0bf020000801700000000000000000000000700000000000000000000000000000008000000000000000000000000000000090000000000000000000000000000000a000000000000000000000000001a40000000801b000000000000000000f07f000000001d00000000000000000000000b0000000000000000000000000000000c0000000000000000000000000000000d0000000000000000000000000000000e0000000000000000000000000023c000000000210000000000000000000cc0020000002700000000000000000000000f000000000000000000000000001240020000002300000000000000000000001000000000000000000000000000f07f02000000250000000000000000000000110000000000000000000000000000001200000000000000000000000000044000000000290000000000000000000c40000000002d000000000000000000000013000000000000000000000000001640000000002b000000000000000000000014000000000000000000000000000000150000000000000000000000000000001600000000000000000000000000f03f020000002f00000000000000000000001700000000000000000000000000000018000000000000000000000000000cc0000000000000f8bf333333333333d33f000000000000044000000000000026400000000000003040000000000000124000000000008037400000000000002b4000000000000016400000000000000000000000000000324000000000000010400000000000803840000000000080344000000000008039400000000000002f4000000000000036400000000000003540000000000080364000000000000029400000000000003340000000000000004000000000000022400000000000002540', 'hex'));
SELECT media_reco.predict('ex_v0', ARRAY[-11, 0, 5]::float8[]) = -3.5 AS p1,
       media_reco.predict('ex_v0', ARRAY[4, -2, NULL]::float8[]) = 14.892857142857142 AS p2,
       media_reco.predict('ex_v0', ARRAY[10, 10, 10]::float8[]) = 14.25 AS p3,
       media_reco.predict('ex_v0', ARRAY[NULL, NULL, NULL]::float8[]) = 10.5 AS p4;
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.explain_prediction('ex_v0', ARRAY[1, 2, 3]::float8[])$$);
SELECT pg_temp.expect_error($$SELECT media_reco.explain_base_value('ex_v0')$$);

-- errors
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.explain_prediction('no_such_model', ARRAY[1]::float8[])$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.explain_prediction('ex_churn', (SELECT s FROM subs s WHERE id = 1), 7)$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.explain_prediction('ex_watch', (SELECT s FROM subs s WHERE id = 1), 1)$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.explain_prediction('ex_churn', (SELECT row(1, 'basic') AS r))$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.explain_prediction('ex_churn', ARRAY[1, 2]::float8[])$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.explain_prediction('ex_churn', NULL::float8[])$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.explain_prediction(NULL, ARRAY[1]::float8[])$$);
SELECT pg_temp.expect_error($$SELECT media_reco.explain_base_value('ex_churn')$$);
SELECT pg_temp.expect_error($$SELECT media_reco.explain_base_value('ex_churn', 0.5)$$);
SELECT pg_temp.expect_error($$SELECT media_reco.explain_base_value('ex_watch', 1)$$);
SELECT pg_temp.expect_error($$SELECT media_reco.explain_base_value('no_such_model', 1)$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.shap_importance('ex_churn', 'subs', 0)$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.shap_importance('no_such_model', 'subs')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.shap_importance('ex_churn', NULL)$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.shap_importance('ex_churn', 'subs', 10, NULL)$$);
SELECT pg_temp.expect_error($$SET media_reco.explain_steps = 0$$);
-- a table without one of the model's columns
CREATE TABLE thin AS SELECT plan, minutes FROM subs;
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.shap_importance('ex_churn', 'thin')$$);
-- corrupted model bytes (a flipped payload byte: the CRC no longer matches)
INSERT INTO media_reco.models (name, algorithm, task, feature_names, model, inputs)
SELECT 'ex_bad', algorithm, task, feature_names,
       set_byte(model, 40, get_byte(model, 40) # 1), inputs
FROM media_reco.models WHERE name = 'ex_watch';
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.explain_prediction('ex_bad', (SELECT s FROM subs s WHERE id = 1))$$);

-- the labels
SELECT p.oid::regprocedure AS function, p.provolatile AS volatility, p.proparallel AS parallel, p.proisstrict AS strict
FROM pg_proc p WHERE p.pronamespace = 'media_reco'::regnamespace
  AND p.proname IN ('explain_prediction', 'explain_base_value', 'explain_completeness', 'shap_importance')
ORDER BY 1::text;

DROP SCHEMA explain_test CASCADE;
SELECT media_reco.drop_model(name) FROM media_reco.models WHERE name LIKE 'ex\_%' ORDER BY name;
