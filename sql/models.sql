-- train_forest, the model registry, prediction by name and by row
\i test/sql/expect_error.sql
CREATE SCHEMA models_test;
SET search_path = models_test, public;
SET maintenance_work_mem = '256MB';

CREATE TYPE device AS ENUM ('tv', 'phone', 'web');
CREATE TABLE subscribers (
    plan        text,
    dev         device,
    active      boolean,
    minutes     numeric,
    sessions    int,
    genres      real[],
    signup      date,            -- not a feature type: skipped when feature_cols is NULL
    churned     boolean
);
-- churn rule: low minutes on the basic plan, or phone users with few sessions
INSERT INTO subscribers
SELECT (ARRAY['basic', 'premium', 'family'])[1 + i % 3],
       (ARRAY['tv', 'phone', 'web'])[1 + (i / 3) % 3]::device,
       i % 5 <> 0,
       CASE WHEN i % 23 = 0 THEN NULL ELSE (i * 37 % 500) END,
       i * 13 % 40,
       ARRAY[(i % 7)::real, (i % 11)::real, CASE WHEN i % 29 = 0 THEN NULL ELSE (i % 5)::real END],
       date '2024-01-01' + i % 365,
       ((i % 3 = 0 AND (i * 37 % 500) < 200) OR ((i / 3) % 3 = 1 AND i * 13 % 40 < 10))
FROM generate_series(1, 4000) i;

SELECT model_name, rows, features, classes, oob_score > 0.9 AS oob_ok
FROM media_reco.train_forest('churn', 'subscribers', 'churned', NULL, '{"n_trees": 30, "seed": 7}');
-- the registry row: every feature column once, arrays expanded, categories sorted, date skipped
SELECT name, algorithm, task, feature_names, classes, label, source,
       options ->> 'n_trees' AS n_trees, options ->> 'features_per_split' AS per_split,
       metrics ->> 'rows' AS rows, (metrics ->> 'oob_score')::float8 > 0.9 AS oob_ok
FROM media_reco.models;
SELECT jsonb_pretty(inputs) FROM media_reco.models WHERE name = 'churn';

-- prediction by row (columns by name, extra columns ignored) agrees with prediction by array
SELECT count(*) AS rows,
       sum((media_reco.predict('churn', s) = media_reco.predict('churn', ARRAY[
            array_position(ARRAY['basic', 'family', 'premium'], plan) - 1,
            array_position(ARRAY['phone', 'tv', 'web'], dev::text) - 1,
            active::int, minutes, sessions, genres[1], genres[2], genres[3]]::float8[]))::int) AS agree,
       avg((media_reco.predict('churn', s) = churned::int)::int) > 0.97 AS train_accurate
FROM subscribers s;
-- a row type of our own: any column order, extra columns, the label absent
CREATE TABLE incoming (extra text, sessions int, genres real[], minutes numeric, active boolean,
                       dev device, plan text);
INSERT INTO incoming VALUES ('x', 3, '{1,2,3}', 50, true, 'phone', 'basic'),
                            ('y', 30, '{1,2,3}', 450, true, 'tv', 'premium');
SELECT extra, media_reco.predict('churn', i) AS churn, media_reco.predict_proba('churn', i) IS NOT NULL AS has_proba
FROM incoming i ORDER BY extra;
-- an unseen category, a NULL category and a NULL array all behave like missing values
SELECT media_reco.predict_proba('churn', ROW('x', 3, '{1,2,3}', 50, true, 'phone', 'netflix-bundle')::incoming) =
       media_reco.predict_proba('churn', ROW('x', 3, '{1,2,3}', 50, true, 'phone', NULL)::incoming) AS unseen_is_missing;
SELECT media_reco.predict_proba('churn', ROW('x', 3, NULL, 50, true, 'phone', 'basic')::incoming) =
       media_reco.predict_proba('churn', ROW('x', 3, '{NULL,NULL,NULL}', 50, true, 'phone', 'basic')::incoming)
       AS null_array_is_missing;

-- char(n) categories: the padding is not part of the value, so the same value given as char(5),
-- text or char(10) is the same category (the class follows c exactly here)
CREATE TABLE padded AS SELECT (ARRAY['ab', 'cd', 'ef'])[1 + i % 3]::char(5) AS c, (i % 3)::float8 AS y
FROM generate_series(1, 90) i;
SELECT model_name FROM media_reco.train_forest('padded', 'padded', 'y', '{c}', '{"n_trees": 5, "bootstrap": false}');
SELECT inputs -> 0 -> 'categories' AS categories FROM media_reco.models WHERE name = 'padded';
SELECT c, media_reco.predict('padded', p) AS as_char5,
       media_reco.predict('padded', (SELECT r FROM (SELECT p.c::text AS c) r)) AS as_text,
       media_reco.predict('padded', (SELECT r FROM (SELECT p.c::char(10) AS c) r)) AS as_char10
FROM (SELECT DISTINCT c FROM padded) p ORDER BY c;
SELECT media_reco.drop_model('padded');
DROP TABLE padded;

-- feature importance: every feature, sums to 1, ranked; the rule's columns lead
SELECT count(*) AS features, round(sum(importance)::numeric, 12) AS total,
       bool_and(importance >= 0) AS non_negative, max(rank) AS last_rank
FROM media_reco.feature_importance('churn');
SELECT feature FROM media_reco.feature_importance('churn') WHERE rank <= 4 ORDER BY feature;

-- chosen columns, a float8[] column, regression
CREATE TABLE watch AS
SELECT i, ARRAY[(i % 10)::float8, (i % 7)::float8] AS f, (i % 10) * 10.0 + (i % 7) AS minutes, i % 3 AS noise
FROM generate_series(1, 2000) i;
SELECT model_name, rows, features, classes, oob_score > 0.99 AS oob_r2_ok
FROM media_reco.train_forest('watch', 'watch', 'minutes', '{f}', '{"task": "regression", "n_trees": 20, "seed": 1}');
SELECT task, classes, feature_names FROM media_reco.models WHERE name = 'watch';
SELECT media_reco.predict('watch', ARRAY[4.0, 3.0]) AS about_43, media_reco.predict('watch', w) AS by_row
FROM (SELECT ARRAY[4.0, 3.0]::float8[] AS f) w;

-- retraining replaces the row and the cached model; the cache loads once per row version
SELECT model_name, loads FROM media_reco.model_cache() ORDER BY 1;
SELECT count(media_reco.predict('watch', f)) FROM watch;
SELECT model_name, loads FROM media_reco.model_cache() WHERE model_name = 'watch';
SELECT model_name FROM media_reco.train_forest('watch', 'watch', 'minutes', '{f}',
                                               '{"task": "regression", "n_trees": 5, "seed": 2}');
SELECT (options ->> 'n_trees')::int AS n_trees FROM media_reco.models WHERE name = 'watch';
SELECT count(media_reco.predict('watch', f)) FROM watch;
SELECT model_name, loads FROM media_reco.model_cache() WHERE model_name = 'watch';
-- a rolled-back retrain: the old model comes back
BEGIN;
SELECT model_name FROM media_reco.train_forest('watch', 'watch', 'minutes', '{f}',
                                               '{"task": "regression", "n_trees": 1, "seed": 3}');
SELECT media_reco.predict('watch', ARRAY[4.0, 3.0]) IS NOT NULL AS predicts_in_transaction;
ROLLBACK;
SELECT (options ->> 'n_trees')::int AS n_trees_after_rollback FROM media_reco.models WHERE name = 'watch';
SELECT media_reco.predict('watch', ARRAY[4.0, 3.0]) =
       media_reco.predict((SELECT model FROM media_reco.models WHERE name = 'watch'), ARRAY[4.0, 3.0])
       AS cache_matches_row;

-- a whole table through the cached model: 100k rows, one load
CREATE TABLE many AS SELECT ARRAY[(i % 10)::float8, (i % 7)::float8] AS f FROM generate_series(1, 100000) i;
CREATE TEMP TABLE t0 AS SELECT clock_timestamp() AS t, (SELECT loads FROM media_reco.model_cache() WHERE model_name = 'watch') AS loads;
SELECT count(media_reco.predict('watch', f)) FROM many;
SELECT (SELECT loads FROM media_reco.model_cache() WHERE model_name = 'watch') - loads AS new_loads,
       clock_timestamp() - t < interval '5 seconds' AS fast
FROM t0;

-- one call site alternating between models: each is looked up once per query, not once per row
-- (nor are its buffers allocated per switch), and every answer is its own model's
SELECT model_name FROM media_reco.train_forest('watch2', 'watch', 'minutes', '{f}',
                                               '{"task": "regression", "n_trees": 3, "seed": 5}');
SELECT media_reco.predict('watch2', ARRAY[4.0, 3.0]) IS NOT NULL AS warm;
CREATE TEMP TABLE c0 AS SELECT model_name, checks FROM media_reco.model_cache() WHERE model_name IN ('watch', 'watch2');
SELECT count(media_reco.predict(CASE WHEN i % 2 = 0 THEN 'watch' ELSE 'watch2' END, ARRAY[4.0, 3.0]))
FROM generate_series(1, 20000) i;
SELECT c.model_name, m.checks - c.checks AS lookups FROM c0 c JOIN media_reco.model_cache() m USING (model_name) ORDER BY 1;
SELECT count(*) AS rows, count(*) FILTER (WHERE media_reco.predict(v.n, x.f) IS DISTINCT FROM
         media_reco.predict((SELECT model FROM media_reco.models WHERE name = v.n), x.f)) AS wrong
FROM (SELECT ARRAY[(i % 10)::float8, (i % 7)::float8] AS f FROM generate_series(1, 500) i) x,
     (VALUES ('watch'), ('watch2'), ('watch'), ('watch2'), ('watch2')) v(n);
SELECT media_reco.drop_model('watch2');
DROP TABLE c0;

-- a call site that outlives a retrain (PL/pgSQL keeps it for the transaction) follows the new model
CREATE TABLE classes3 AS SELECT ARRAY[i::float8] AS f, (i % 3)::float8 AS y FROM generate_series(1, 300) i;
CREATE TABLE classes7 AS SELECT ARRAY[i::float8] AS f, (i % 7)::float8 AS y FROM generate_series(1, 700) i;
SELECT model_name FROM media_reco.train_forest('shape', 'classes3', 'y', NULL, '{"n_trees": 3}');
DO $$
DECLARE n1 int; n2 int;
BEGIN
  n1 := cardinality(media_reco.predict_proba('shape', ARRAY[5.0]));
  PERFORM media_reco.train_forest('shape', 'classes7', 'y', NULL, '{"n_trees": 3}');
  n2 := cardinality(media_reco.predict_proba('shape', ARRAY[5.0]));
  RAISE NOTICE 'classes before %, after %', n1, n2;
END $$;
-- a row variable whose table changes layout between calls
CREATE TABLE rowtab (f float8[], y float8);
SELECT model_name FROM media_reco.train_forest('rowm', 'classes3', 'y', NULL, '{"n_trees": 3}');
INSERT INTO rowtab VALUES ('{5}', 0);
DO $$
DECLARE r rowtab; p1 float8; p2 float8;
BEGIN
  SELECT * INTO r FROM rowtab;
  p1 := media_reco.predict('rowm', r);
  ALTER TABLE rowtab ADD COLUMN a1 int, ADD COLUMN a2 int, ADD COLUMN a3 int;
  ALTER TABLE rowtab DROP COLUMN f;
  ALTER TABLE rowtab ADD COLUMN f float8[];
  UPDATE rowtab SET f = '{5}';
  SELECT * INTO r FROM rowtab;
  p2 := media_reco.predict('rowm', r);
  RAISE NOTICE 'same prediction after the layout change: %', p1 = p2;
END $$;
SELECT media_reco.drop_model('shape'), media_reco.drop_model('rowm');

-- a forest_fit model stored under a name with save_model
SELECT media_reco.save_model('fit', (SELECT media_reco.forest_fit(f, (minutes > 50)::int, '{"n_trees": 5}') FROM watch),
                             '{tens, units}');
SELECT algorithm, task, feature_names, classes, inputs FROM media_reco.models WHERE name = 'fit';
SELECT media_reco.predict('fit', ARRAY[9.0, 0.0]) AS high, media_reco.predict('fit', w) AS by_row
FROM (SELECT ARRAY[1.0, 0.0]::float8[] AS features) w;
SELECT * FROM media_reco.feature_importance('fit') ORDER BY rank;

-- drop_model
SELECT media_reco.drop_model('fit');
SELECT count(*) FROM media_reco.models WHERE name = 'fit';
SELECT model_name FROM media_reco.model_cache() ORDER BY 1;

-- errors: train_forest
CREATE TABLE one_class AS SELECT i::float8 AS x, 1 AS y FROM generate_series(1, 10) i;
CREATE TABLE empty_t (x float8, y int);
CREATE TABLE bad_arrays (f float8[], y int);
INSERT INTO bad_arrays VALUES ('{1,2}', 0), ('{1,2,3}', 1);
CREATE TABLE null_arrays (x float8, f float8[], y int);
INSERT INTO null_arrays VALUES (1, NULL, 0), (2, NULL, 1);
CREATE TABLE inf_t (x float8, y int);
INSERT INTO inf_t VALUES (1, 0), ('Infinity', 1);
CREATE TABLE text_label (x float8, y text);
CREATE TABLE only_label (y int, d date);
CREATE SEQUENCE a_seq;
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.train_forest(NULL, 'watch', 'minutes')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.train_forest('', 'watch', 'minutes')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.train_forest(repeat('m', 64), 'watch', 'minutes')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.train_forest('m', NULL, 'minutes')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.train_forest('m', 'no_such_table', 'minutes')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.train_forest('m', 'a_seq', 'minutes')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.train_forest('m', 'watch', NULL)$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.train_forest('m', 'watch', 'nope')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.train_forest('m', 'text_label', 'y')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.train_forest('m', 'watch', 'minutes', '{nope}')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.train_forest('m', 'watch', 'minutes', '{f, f}')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.train_forest('m', 'watch', 'minutes', '{minutes}')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.train_forest('m', 'watch', 'minutes', '{}')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.train_forest('m', 'watch', 'minutes', '{NULL}')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.train_forest('m', 'subscribers', 'churned', '{signup}')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.train_forest('m', 'only_label', 'y')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.train_forest('m', 'watch', 'minutes', NULL, NULL)$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.train_forest('m', 'watch', 'minutes', NULL, '{"trees": 5}')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.train_forest('m', 'watch', 'minutes', NULL, '{"n_trees": -1}')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.train_forest('m', 'empty_t', 'y')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.train_forest('m', 'one_class', 'y')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.train_forest('m', 'bad_arrays', 'y')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.train_forest('m', 'null_arrays', 'y')$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.train_forest('m', 'inf_t', 'y')$$);
SELECT pg_temp.expect_error($$SELECT media_reco.forest_fit(ARRAY[1.0], 1e301)$$);
CREATE TABLE wide AS SELECT i % 2 AS y, i::float8 AS a, -i::float8 AS b, (i % 97)::float8 AS c
FROM generate_series(1, 50000) i;
SET maintenance_work_mem = '1MB';
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.train_forest('m', 'wide', 'y')$$);
SET maintenance_work_mem = '4MB';
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.train_forest('m', 'wide', 'y', '{a, c}')$$);
SET maintenance_work_mem = '8MB';
SELECT regexp_replace(pg_temp.expect_error($$SELECT * FROM media_reco.train_forest('m', 'watch', 'noise', NULL, '{"n_trees": 2000}')$$),
                      'hold \d+ MB', 'hold N MB') AS tree_budget;
RESET maintenance_work_mem;
-- a cancelled train_forest (how fast the cancel lands, that it stores nothing
-- and leaves the model it would replace as it was, that the session stays
-- usable): test/t/007_cancel_latency.pl, which cancels at a known state
-- nothing was stored by the failed calls
SELECT name FROM media_reco.models ORDER BY name;

-- errors: prediction and the registry
SELECT pg_temp.expect_error($$SELECT media_reco.predict('nope', ARRAY[1.0])$$);
SELECT pg_temp.expect_error($$SELECT media_reco.predict(repeat('x', 100), ARRAY[1.0])$$);
SELECT pg_temp.expect_error($$SELECT media_reco.predict('watch', ARRAY[1.0])$$);
SELECT pg_temp.expect_error($$SELECT media_reco.predict('watch', ARRAY[[1.0, 2.0]])$$);
SELECT pg_temp.expect_error($$SELECT media_reco.predict_proba('watch', ARRAY[1.0, 2.0])$$);
SELECT pg_temp.expect_error($$SELECT media_reco.predict('churn', ROW(1, 2)::record)$$);
SELECT pg_temp.expect_error($$SELECT media_reco.predict('churn', w) FROM watch w$$);
CREATE TABLE wrong_types (plan int, dev device, active boolean, minutes numeric, sessions int, genres real[]);
INSERT INTO wrong_types VALUES (1, 'tv', true, 1, 1, '{1,2,3}');
SELECT pg_temp.expect_error($$SELECT media_reco.predict('churn', w) FROM wrong_types w$$);
CREATE TABLE short_arrays (plan text, dev device, active boolean, minutes numeric, sessions int, genres real[]);
INSERT INTO short_arrays VALUES ('basic', 'tv', true, 1, 1, '{1,2}');
SELECT pg_temp.expect_error($$SELECT media_reco.predict('churn', w) FROM short_arrays w$$);
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.feature_importance('nope')$$);
SELECT pg_temp.expect_error($$SELECT media_reco.drop_model('nope')$$);
SELECT pg_temp.expect_error($$SELECT media_reco.drop_model(NULL)$$);
SELECT pg_temp.expect_error($$SELECT media_reco.save_model('x', '\x00'::bytea)$$);
SELECT pg_temp.expect_error($$SELECT media_reco.save_model('x', model, '{a}') FROM media_reco.models WHERE name = 'watch'$$);
SELECT pg_temp.expect_error($$SELECT media_reco.save_model('x', model, '{a, NULL}') FROM media_reco.models WHERE name = 'watch'$$);
-- a model row edited by hand: its bytes and its input encoding are checked on load
UPDATE media_reco.models SET model = substr(model, 1, 100) WHERE name = 'watch';
SELECT pg_temp.expect_error($$SELECT media_reco.predict('watch', ARRAY[1.0, 2.0])$$);
UPDATE media_reco.models SET model = (SELECT model FROM media_reco.models WHERE name = 'churn'),
       inputs = '[{"column": "f", "type": "array", "length": 2}]' WHERE name = 'watch';
SELECT pg_temp.expect_error($$SELECT media_reco.predict('watch', ARRAY[1.0, 2.0])$$);
UPDATE media_reco.models SET inputs = '{"column": "f"}' WHERE name = 'churn';
SELECT pg_temp.expect_error($$SELECT media_reco.predict('churn', ARRAY[1, 2, 3, 4, 5, 6, 7, 8.0])$$);
SELECT split_part(pg_temp.expect_error($$UPDATE media_reco.models SET task = 'ranking' WHERE name = 'churn'$$), ' (', 1);
SELECT split_part(pg_temp.expect_error($$INSERT INTO media_reco.models (name, algorithm, task, feature_names, model) VALUES ('', 'random_forest', 'regression', '{}', '')$$), ' (', 1);

-- the registry survives in dumps
SELECT extcondition IS NOT NULL AS dumped FROM pg_extension e, LATERAL unnest(e.extconfig) c
WHERE e.extname = 'media_reco' AND c = 'media_reco.models'::regclass;

-- a model value is used only once its own bytes were validated: a corrupted
-- value after a valid one (per-row values share one buffer, same length, intact
-- header) is 22P03, as it is alone -- not answered by the previous row's model
CREATE TABLE blob_t AS
SELECT media_reco.forest_fit(ARRAY[x]::float8[], (x > 5)::int::float8, '{"n_trees": 2}') AS b
  FROM generate_series(1, 10) x;
CREATE TABLE blob_vals AS
SELECT 1 AS id, encode(b, 'hex') AS h FROM blob_t
UNION ALL SELECT 2, encode(set_byte(b, 200, get_byte(b, 200) # 8), 'hex') FROM blob_t;
SELECT pg_temp.expect_error($$SELECT id, media_reco.predict(decode(h, 'hex'), ARRAY[3.0]::float8[]) FROM blob_vals ORDER BY id$$);
SELECT pg_temp.expect_error($$SELECT id, media_reco.predict_proba(decode(h, 'hex'), ARRAY[3.0]::float8[]) FROM blob_vals ORDER BY id$$);
SELECT pg_temp.expect_error($$SELECT media_reco.predict(decode(h, 'hex'), ARRAY[3.0]::float8[]) FROM blob_vals WHERE id = 2$$);
-- the valid value alone, many times over: answered (x = 3 is class 0, x = 8 class 1)
SELECT id, media_reco.predict(decode(h, 'hex'), ARRAY[3.0 + 5 * (g % 2)]::float8[]) AS p, count(*)
  FROM blob_vals, generate_series(1, 1000) g WHERE id = 1 GROUP BY 1, 2 ORDER BY 1, 2;
-- out-of-line values (TOAST pointers): each row's own bytes, two valid models
-- alternating row by row, then a corrupted one after them
CREATE TABLE blob_ext (id int, b bytea);
ALTER TABLE blob_ext ALTER COLUMN b SET STORAGE EXTERNAL;
INSERT INTO blob_ext
SELECT t, media_reco.forest_fit(ARRAY[x]::float8[], (x > CASE WHEN t = 1 THEN 5 ELSE 2 END)::int::float8,
                                '{"n_trees": 200}')
  FROM generate_series(1, 2) t, generate_series(1, 10) x GROUP BY t;
SELECT min(length(b)) > 8000 AS out_of_line FROM blob_ext;   -- EXTERNAL storage: beyond 2 kB, out of line
SELECT id, media_reco.predict(b, ARRAY[3.0]::float8[]) AS p
  FROM blob_ext, generate_series(1, 3) g ORDER BY g, id;
INSERT INTO blob_ext SELECT 3, set_byte(b, 200, get_byte(b, 200) # 8) FROM blob_ext WHERE id = 1;
SELECT pg_temp.expect_error($$SELECT id, media_reco.predict(b, ARRAY[3.0]::float8[]) FROM blob_ext ORDER BY id$$);
DROP TABLE blob_t, blob_vals, blob_ext;

-- a forest that made no split (min_samples_leaf larger than the data) has no
-- feature importances: an error saying so, not zeros that break the sum of 1
SELECT media_reco.save_model('nosplit',
         media_reco.forest_fit(ARRAY[x, x % 3]::float8[], (x > 5)::int::float8,
                               '{"n_trees": 3, "min_samples_leaf": 100}'))
  FROM generate_series(1, 10) x;
SELECT pg_temp.expect_error($$SELECT * FROM media_reco.feature_importance('nosplit')$$);
-- one split is enough: the one feature has importance 1
SELECT media_reco.save_model('onesplit',
         media_reco.forest_fit(ARRAY[x]::float8[], (x > 5)::int::float8,
                               '{"n_trees": 3, "max_depth": 1}'))
  FROM generate_series(1, 10) x;
SELECT feature, importance, rank FROM media_reco.feature_importance('onesplit') ORDER BY rank;
SELECT media_reco.drop_model('nosplit'), media_reco.drop_model('onesplit');
