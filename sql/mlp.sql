-- train_mlp: the ad-targeting network, its predictions, top_classes and its model bytes
\i test/sql/expect_error.sql
\i test/sql/blob_helpers.sql
CREATE SCHEMA mlp_test;
SET search_path = mlp_test, public;
SET client_min_messages = warning;

-- XOR needs a hidden layer: learned exactly
CREATE TABLE xor AS SELECT i, (i % 2)::float8 AS a, ((i / 2) % 2)::float8 AS b, ((i % 2) # ((i / 2) % 2)) AS y
FROM generate_series(0, 399) i;
SELECT model_name, rows, features, classes, epochs > 0 AS trained, train_loss < 0.05 AS low_loss
FROM media_reco.train_mlp('xor', 'xor', 'y', '{a,b}', '{"hidden": [16], "activation": "tanh", "epochs": 300,
                          "learning_rate": 0.01, "validation_fraction": 0, "seed": 1}');
SELECT a, b, media_reco.predict('xor', ARRAY[a, b]) AS class FROM xor GROUP BY a, b ORDER BY a, b;
-- without a hidden layer (a softmax regression) it cannot be
SELECT model_name FROM media_reco.train_mlp('xor_linear', 'xor', 'y', '{a,b}', '{"hidden": [], "epochs": 100,
                          "validation_fraction": 0, "seed": 1}');
SELECT avg((media_reco.predict('xor_linear', ARRAY[a, b]) = y)::int) <= 0.75 AS linear_fails FROM xor;

-- a linearly separable set in 3 classes: 100% accuracy; probabilities sum to 1
CREATE TABLE blobs AS
SELECT i, (i % 3) * 10 + ((i * 7919) % 100) / 100.0 AS x1, ((i * 104729) % 100) / 100.0 AS x2, i % 3 AS label
FROM generate_series(1, 600) i;
SELECT classes, validation_accuracy AS val_acc
FROM media_reco.train_mlp('blobs', 'blobs', 'label', '{x1,x2}', '{"hidden": [8], "epochs": 200, "seed": 3,
                          "learning_rate": 0.01, "batch_size": 32}');
SELECT avg((media_reco.predict('blobs', b) = label)::int) AS accuracy,
       bool_and(abs((SELECT sum(p) FROM unnest(media_reco.predict_proba('blobs', b)) p) - 1) < 1e-12) AS sums_to_one,
       min(cardinality(media_reco.predict_proba('blobs', b))) AS probabilities
FROM blobs b;
SELECT class, rank FROM media_reco.top_classes('blobs', ARRAY[20.5, 0.5], 3) ORDER BY rank;
-- over a table: the first class of each row is predict's answer, and the model row is looked up
-- once per call site and query (two here: top_classes and predict), not once per row
CREATE TEMP TABLE tc0 AS SELECT checks FROM media_reco.model_cache() WHERE model_name = 'blobs';
SELECT count(*) AS rows, count(*) FILTER (WHERE t.class IS DISTINCT FROM media_reco.predict('blobs', b)) AS differ
FROM blobs b, LATERAL media_reco.top_classes('blobs', ARRAY[b.x1, b.x2], 1) t;
SELECT m.checks - tc0.checks AS lookups FROM tc0, media_reco.model_cache() m WHERE m.model_name = 'blobs';
DROP TABLE tc0;

-- determinism: the same rows, options and seed give the same bytes, whatever the row order
CREATE TABLE blobs_shuffled AS SELECT * FROM blobs ORDER BY md5(i::text);
SELECT model_name FROM media_reco.train_mlp('b2', 'blobs_shuffled', 'label', '{x1,x2}', '{"hidden": [8], "epochs": 200, "seed": 3,
                          "learning_rate": 0.01, "batch_size": 32}');
SELECT model_name FROM media_reco.train_mlp('b3', 'blobs', 'label', '{x1,x2}', '{"hidden": [8], "epochs": 200, "seed": 4,
                          "learning_rate": 0.01, "batch_size": 32}');
SELECT (SELECT md5(model) FROM media_reco.models WHERE name = 'blobs') = (SELECT md5(model) FROM media_reco.models WHERE name = 'b2')
       AS same_seed_same_bytes,
       (SELECT md5(model) FROM media_reco.models WHERE name = 'blobs') <> (SELECT md5(model) FROM media_reco.models WHERE name = 'b3')
       AS other_seed_other_bytes;

-- regression: one linear output, squared loss
CREATE TABLE lin AS SELECT i, (i % 17) / 17.0 AS a, (i % 13) / 13.0 AS b, 2 * ((i % 17) / 17.0) - 3 * ((i % 13) / 13.0) + 1 AS y
FROM generate_series(1, 2000) i;
SELECT classes, validation_accuracy > 0.99 AS r2_high
FROM media_reco.train_mlp('lin', 'lin', 'y', '{a,b}', '{"task": "regression", "hidden": [16], "epochs": 200, "seed": 2}');
SELECT abs(media_reco.predict('lin', ARRAY[0.5, 0.5]) - 0.5) < 0.1 AS close;

-- categories (text) are one-hot encoded; an unseen value is all zeros
CREATE TABLE ads AS SELECT i, (ARRAY['tv', 'phone', 'web'])[1 + i % 3] AS device, (i % 10)::float8 AS minutes,
       CASE WHEN i % 3 = 0 THEN 0 WHEN i % 3 = 1 THEN 1 ELSE 2 END AS ad
FROM generate_series(1, 900) i;
SELECT features, classes FROM media_reco.train_mlp('ads', 'ads', 'ad', '{device,minutes}', '{"hidden": [8], "epochs": 100, "seed": 5,
                          "learning_rate": 0.01, "batch_size": 32}');
SELECT avg((media_reco.predict('ads', a) = ad)::int) AS accuracy FROM ads a;
SELECT inputs FROM media_reco.models WHERE name = 'ads';
CREATE TABLE ads_new (device text, minutes float8);
INSERT INTO ads_new VALUES ('radio', 3.0);
SELECT cardinality(media_reco.predict_proba('ads', n)) AS unseen_category_predicts FROM ads_new n;

-- ties in top_classes go to the smaller class: make classes 0 and 1 identical in a softmax regression
SELECT model_name FROM media_reco.train_mlp('tie', 'blobs', 'label', '{x1}', '{"hidden": [], "epochs": 5, "seed": 1,
                          "validation_fraction": 0}');
-- payload at 24: head 4, n_in 4, classes 4, layers 4, sizes 8, levels 4, mean 8, scale 8, classes 24,
-- W 1x3 doubles at 24+68, b 3 doubles at 24+92
UPDATE media_reco.models SET model = pg_temp.reseal(overlay(overlay(model PLACING substr(model, 93, 8) FROM 101)
                                                            PLACING substr(model, 117, 8) FROM 125))
WHERE name = 'tie';
SELECT class, round(probability::numeric, 12) = round((SELECT probability FROM media_reco.top_classes('tie', ARRAY[5.0], 3)
                                                        WHERE rank = 1)::numeric, 12) AS tied_with_first, rank
FROM media_reco.top_classes('tie', ARRAY[5.0], 3) WHERE class IN (0, 1) ORDER BY rank;

-- a cancelled train_mlp (how fast the cancel lands, that it stores nothing and
-- that the session stays usable): test/t/007_cancel_latency.pl, which cancels
-- at a known state rather than after a time
-- beyond maintenance_work_mem: a clear error before training
SET maintenance_work_mem = '1MB';
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.train_mlp('big', 'xor', 'y', '{a,b}', '{"hidden": [4096, 4096]}')$$);
RESET maintenance_work_mem;

-- errors: options
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.train_mlp('e', 'xor', 'y', NULL, '{"hiden": [4]}')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.train_mlp('e', 'xor', 'y', NULL, '{"hidden": [0]}')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.train_mlp('e', 'xor', 'y', NULL, '{"hidden": [1,2,3,4,5,6,7,8,9]}')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.train_mlp('e', 'xor', 'y', NULL, '{"hidden": 4}')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.train_mlp('e', 'xor', 'y', NULL, '{"activation": "gelu"}')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.train_mlp('e', 'xor', 'y', NULL, '{"solver": "lbfgs"}')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.train_mlp('e', 'xor', 'y', NULL, '{"learning_rate": 0}')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.train_mlp('e', 'xor', 'y', NULL, '{"momentum": 1}')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.train_mlp('e', 'xor', 'y', NULL, '{"batch_size": 0}')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.train_mlp('e', 'xor', 'y', NULL, '{"epochs": 1.5}')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.train_mlp('e', 'xor', 'y', NULL, '{"validation_fraction": 0.9}')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.train_mlp('e', 'xor', 'y', NULL, '{"patience": 0}')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.train_mlp('e', 'xor', 'y', NULL, '{"l2": -1}')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.train_mlp('e', 'xor', 'y', NULL, '{"tol": "x"}')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.train_mlp('e', 'xor', 'y', NULL, '{"task": "ranking"}')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.train_mlp('e', 'xor', 'y', NULL, '[]')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.train_mlp('e', 'xor', 'y', NULL, NULL)$$);
-- errors: data and prediction
CREATE TABLE one_class AS SELECT i::float8 AS a, 1 AS y FROM generate_series(1, 10) i;
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.train_mlp('e', 'one_class', 'y')$$);
CREATE TABLE empty_t (a float8, y int);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.train_mlp('e', 'empty_t', 'y')$$);
CREATE TABLE huge_y AS SELECT i::float8 AS a, i * 1e200 AS y FROM generate_series(1, 50) i;
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.train_mlp('e', 'huge_y', 'y', NULL, '{"task": "regression", "learning_rate": 1}')$$);
SELECT pg_temp.expect_error($$SELECT media_reco.predict('blobs', ARRAY[1.0])$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.top_classes('blobs', ARRAY[1.0, 2.0], 0)$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.top_classes('lin', ARRAY[1.0, 2.0])$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.top_classes('nope', ARRAY[1.0, 2.0])$$);
SELECT pg_temp.expect_error($$SELECT media_reco.predict_proba('lin', ARRAY[1.0, 2.0])$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.feature_importance('blobs')$$);
SELECT name FROM media_reco.models WHERE name = 'e';

-- corrupted network bytes are 22P03
SELECT what, pg_temp.expect_error(format('SELECT media_reco.predict(%L::bytea, ARRAY[1.0])', bad))
FROM (SELECT model FROM media_reco.models WHERE name = 'tie') m, LATERAL (VALUES
  ('truncated',        substr(model, 1, 100)),
  ('flipped byte',     set_byte(model, 100, get_byte(model, 100) # 1)),
  ('activation 9',     pg_temp.reseal(set_byte(model, 25, 9))),
  ('0 inputs',         pg_temp.reseal(pg_temp.put_u32(model, 28, 0))),
  ('1 class',          pg_temp.reseal(pg_temp.put_u32(model, 32, 1))),
  ('20 layers',        pg_temp.reseal(pg_temp.put_u32(model, 36, 20))),
  ('input size 7',     pg_temp.reseal(pg_temp.put_u32(model, 40, 7))),
  ('levels 5000',      pg_temp.reseal(pg_temp.put_u32(model, 48, 5000))),
  ('NaN weight',       pg_temp.reseal(overlay(model PLACING '\x000000000000f87f'::bytea FROM 93))),
  ('classes unsorted', pg_temp.reseal(overlay(model PLACING '\x0000000000005940'::bytea FROM 69)))
) v(what, bad);

-- huge inputs: logits far beyond exp's range (a standardised 1e6 is ~1e5 here) still give finite
-- probabilities summing to 1, because the softmax subtracts the largest logit first; predict and
-- top_classes agree with the argmax of predict_proba (ties to the smaller class)
CREATE FUNCTION pg_temp.argmax(p float8[]) RETURNS int LANGUAGE sql IMMUTABLE AS $$
  SELECT (o - 1)::int FROM unnest(p) WITH ORDINALITY u(v, o) ORDER BY v DESC, o LIMIT 1 $$;
SELECT x, bool_and(p > -1 AND p < 2) AS finite_in_range,   -- NaN compares above every number
       abs(sum(p) - 1) < 1e-12 AS sums_to_one,
       media_reco.predict('blobs', x) = pg_temp.argmax(media_reco.predict_proba('blobs', x)) AS predict_is_argmax,
       (SELECT class FROM media_reco.top_classes('blobs', x, 1)) = pg_temp.argmax(media_reco.predict_proba('blobs', x))
         AS top_class_is_argmax
FROM (VALUES (ARRAY[1e4, 0.5]::float8[]), (ARRAY[-1e4, 0.5]), (ARRAY[1e6, 0.5]), (ARRAY[-1e6, 0.5]),
             (ARRAY[15, 1e6]), (ARRAY[1e6, -1e6]), (ARRAY[1e12, 1e12])) v(x),
     LATERAL unnest(media_reco.predict_proba('blobs', x)) p
GROUP BY x ORDER BY x;
-- the same in training: a softmax regression by SGD (learning rate 10, batch 1) on a column where one
-- row of 2000 stands out (standardised, about 45 against -0.02): its first update moves the weights by
-- ~10 * 0.5 * 45, so its logits are ~1e4 from then on; the training softmax subtracts the largest
-- logit too, so training converges (without that, exp overflows, the gradients become NaN and
-- training stops with "diverged") and the model tells the row apart
CREATE TABLE outlier AS SELECT i, (i = 1000)::int::float8 AS x, (i = 1000)::int AS y FROM generate_series(1, 2000) i;
SELECT rows, classes, epochs FROM media_reco.train_mlp('outlier', 'outlier', 'y', '{x}',
       '{"hidden": [], "solver": "sgd", "learning_rate": 10, "batch_size": 1, "epochs": 3, "l2": 0,
         "validation_fraction": 0, "seed": 1}');
SELECT x, media_reco.predict('outlier', ARRAY[x]) AS class, p[1] >= 0 AND p[1] <= 1 AND abs(p[1] + p[2] - 1) < 1e-12 AS sums_to_one
FROM (VALUES (0.0::float8), (1.0)) v(x), LATERAL (SELECT media_reco.predict_proba('outlier', ARRAY[x]) AS p) pp;
-- an output the network cannot represent is an error (22003), never Infinity or NaN: a
-- regression on inputs whose standardised value overflows, and a classifier on the same
CREATE FUNCTION pg_temp.finite_or_error(stmt text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE v float8[];
BEGIN
  EXECUTE stmt INTO v;
  RETURN CASE WHEN v IS NULL THEN 'NULL'
              WHEN (SELECT bool_and(e > -'Infinity'::float8 AND e < 'Infinity'::float8) FROM unnest(v) e) THEN 'finite'
              ELSE 'not finite: ' || v::text END;
EXCEPTION WHEN OTHERS THEN
  RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
SELECT x, pg_temp.finite_or_error(format('SELECT ARRAY[media_reco.predict(''lin'', %L::float8[])]', x)) AS regression,
       pg_temp.finite_or_error(format('SELECT media_reco.predict_proba(''blobs'', %L::float8[])', x)) AS classifier
FROM (VALUES (ARRAY[1e6, 1e6]::float8[]), (ARRAY[-1e6, 1e6]), (ARRAY[1e300, 0.5]), (ARRAY[1.7e308, 0.5]),
             (ARRAY[1.7e308, -1.7e308]), (ARRAY[0.5, -1.7e308])) v(x)
ORDER BY x;
