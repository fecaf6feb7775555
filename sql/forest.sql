-- forest_fit (the aggregate) and prediction on model values
\i test/sql/expect_error.sql
CREATE SCHEMA forest_test;
SET search_path = forest_test, public;
SET maintenance_work_mem = '256MB';

-- a stump by hand: x = 1..4, y = 0,1,0,0; one tree, no bootstrap, depth 1.
-- Gini scores: x <= 1.5 -> 1/1 + 5/3; x <= 2.5 -> 2/2 + 4/2 = 3 (best); x <= 3.5 -> 5/3 + 1
CREATE TABLE stump (x float8, y float8);
INSERT INTO stump VALUES (1, 0), (2, 1), (3, 0), (4, 0);
CREATE TABLE m AS
SELECT media_reco.forest_fit(ARRAY[x], y,
         '{"n_trees": 1, "bootstrap": false, "max_depth": 1, "max_features": "all"}') AS model
FROM stump;
SELECT x, media_reco.predict(model, ARRAY[x]) AS class, media_reco.predict_proba(model, ARRAY[x]) AS proba
FROM m, (VALUES (1.0), (2.5), (2.5000001), (10)) v(x);   -- the left leaf is a 0.5/0.5 tie: smaller class

-- a perfect split, and the threshold halfway between the two values
CREATE TABLE sep AS SELECT i::float8 AS x, (i > 3)::int::float8 AS y FROM generate_series(1, 6) i;
SELECT x, media_reco.predict((SELECT media_reco.forest_fit(ARRAY[x], y,
         '{"n_trees": 1, "bootstrap": false, "max_features": "all"}') FROM sep), ARRAY[x])
FROM (VALUES (3.0), (3.4999), (3.5), (3.5001), (4.0)) v(x);

-- regression: leaf means
CREATE TABLE reg AS SELECT * FROM (VALUES (1.0::float8, 1.0::float8), (2, 1), (3, 5), (4, 5), (5, 9)) v(x, y);
SELECT x, media_reco.predict((SELECT media_reco.forest_fit(ARRAY[x], y,
         '{"task": "regression", "n_trees": 1, "bootstrap": false, "max_depth": 1, "max_features": "all"}')
         FROM reg), ARRAY[x]) AS depth1,
       media_reco.predict((SELECT media_reco.forest_fit(ARRAY[x], y,
         '{"task": "regression", "n_trees": 1, "bootstrap": false}') FROM reg), ARRAY[x]) AS full
FROM (VALUES (0.0), (2.0), (2.6), (4.0), (4.6)) v(x);

-- class labels are any finite numbers, returned as given; classes are sorted
SELECT media_reco.predict(model, ARRAY[v]) AS class, media_reco.predict_proba(model, ARRAY[v]) AS proba
FROM (SELECT media_reco.forest_fit(ARRAY[x], CASE WHEN x < 3 THEN 7.5 ELSE -2 END,
        '{"n_trees": 5, "seed": 3}') AS model FROM generate_series(1, 6) x) f,
     (VALUES (1.0), (6.0)) v(v);

-- missing values: NULL elements and NaN are missing; the split learns where they go
CREATE TABLE miss (x float8, y float8);
INSERT INTO miss VALUES (1, 0), (2, 0), (3, 0), (7, 1), (8, 1), (9, 1), (NULL, 1), ('NaN', 1);
SELECT v, media_reco.predict((SELECT media_reco.forest_fit(ARRAY[x], y,
          '{"n_trees": 1, "bootstrap": false}') FROM miss), ARRAY[v]) AS missing_with_high,
       media_reco.predict((SELECT media_reco.forest_fit(ARRAY[x], CASE WHEN x = x THEN y ELSE 0 END,
          '{"n_trees": 1, "bootstrap": false}') FROM miss), ARRAY[v]) AS missing_with_low
FROM (VALUES (2.0), (8.0), (NULL), ('NaN')) v(v);
-- missing apart from any threshold: "non-missing | missing" is a split of its own
SELECT v, media_reco.predict((SELECT media_reco.forest_fit(ARRAY[x], (x IS NULL)::int::float8,
          '{"n_trees": 1, "bootstrap": false}') FROM (VALUES (1.0), (2), (3), (NULL), (NULL)) s(x)), ARRAY[v])
FROM (VALUES (1.0), (1e9), (-1e9), (NULL)) v(v);
-- rows with a NULL label or NULL features are skipped
SELECT media_reco.predict(media_reco.forest_fit(f, y, '{"n_trees": 1, "bootstrap": false}'), ARRAY[1.0])
FROM (VALUES (ARRAY[1.0::float8], 0.0::float8), (ARRAY[2.0], 1), (NULL, 1), (ARRAY[1.0], NULL)) v(f, y);

-- thresholds: any value in [lower, upper) splits the training rows alike; a float one is preferred
-- (8-byte prediction nodes): 1 and 1 + 1e-12 split at 1.0 itself ...
SELECT v, media_reco.predict((SELECT media_reco.forest_fit(ARRAY[x], y, '{"n_trees": 1, "bootstrap": false}')
                              FROM (VALUES (1.0::float8, 0.0::float8), (1.0 + 1e-12, 1)) s(x, y)), ARRAY[v])
FROM (VALUES (1.0::float8), (1.0 + 4e-13), (2.0)) v(v);
-- ... while no float lies between 1 + 1e-12 and 1 + 2e-12: the midpoint stays a double (16-byte nodes)
SELECT v, media_reco.predict((SELECT media_reco.forest_fit(ARRAY[x], y, '{"n_trees": 1, "bootstrap": false}')
                              FROM (VALUES (1.0 + 1e-12, 0.0::float8), (1.0 + 2e-12, 1)) s(x, y)), ARRAY[v])
FROM (VALUES (1.0 + 1e-12), (1.0 + 1.4e-12), (1.0 + 1.6e-12), (1.0 + 2e-12)) v(v);
-- more than 256 features also predicts through 16-byte nodes: XOR hidden in 300 columns
SELECT avg((media_reco.predict(m.model, f) = y)::int) AS wide_xor_accuracy
FROM (SELECT i, ARRAY[(i % 2), (i / 2) % 2]::float8[] || array_fill(0::float8, ARRAY[298]) AS f,
             ((i % 2) # ((i / 2) % 2))::float8 AS y FROM generate_series(0, 399) i) x,
     (SELECT media_reco.forest_fit(ARRAY[(i % 2), (i / 2) % 2]::float8[] || array_fill(0::float8, ARRAY[298]),
                                   ((i % 2) # ((i / 2) % 2))::float8, '{"n_trees": 10, "max_features": "all"}') AS model
      FROM generate_series(0, 399) i) m;

-- XOR needs depth 2: a forest learns it, a stump cannot
CREATE TABLE xor AS SELECT i, ARRAY[(i % 2), (i / 2) % 2]::float8[] AS f, ((i % 2) # ((i / 2) % 2))::float8 AS y
FROM generate_series(0, 399) i;
SELECT avg((media_reco.predict(m.model, f) = y)::int) AS forest_accuracy
FROM xor, (SELECT media_reco.forest_fit(f, y, '{"n_trees": 10}') AS model FROM xor) m;
SELECT avg((media_reco.predict(m.model, f) = y)::int) AS stump_accuracy
FROM xor, (SELECT media_reco.forest_fit(f, y, '{"n_trees": 10, "max_depth": 1}') AS model FROM xor) m;

-- determinism: same data, options and seed give the same bytes; the row order,
-- the thread count and the two-argument form do not matter; another seed does
CREATE TABLE gen AS
SELECT i, ARRAY[(i * 7919 % 1000) / 10.0, (i * 104729 % 997) / 10.0, (i % 13)::float8,
                CASE WHEN i % 17 = 0 THEN NULL ELSE (i * 31 % 101)::float8 END] AS f,
       (((i * 7919 % 1000) / 10.0 + (i % 13) * 3 > 60))::int::float8 AS y
FROM generate_series(1, 3000) i;
CREATE TABLE bytes AS
SELECT 'ordered' AS how, md5(media_reco.forest_fit(f, y, '{"n_trees": 20, "seed": 42}' ORDER BY i)) AS h FROM gen
UNION ALL
SELECT 'reversed', md5(media_reco.forest_fit(f, y, '{"n_trees": 20, "seed": 42}' ORDER BY i DESC)) FROM gen
UNION ALL
SELECT 'shuffled', md5(media_reco.forest_fit(f, y, '{"n_trees": 20, "seed": 42}' ORDER BY md5(i::text))) FROM gen;
SET media_reco.threads = 1;
INSERT INTO bytes SELECT '1 thread', md5(media_reco.forest_fit(f, y, '{"n_trees": 20, "seed": 42}')) FROM gen;
SET media_reco.threads = 4;
INSERT INTO bytes SELECT '4 threads', md5(media_reco.forest_fit(f, y, '{"n_trees": 20, "seed": 42}')) FROM gen;
RESET media_reco.threads;
INSERT INTO bytes SELECT 'seed 43', md5(media_reco.forest_fit(f, y, '{"n_trees": 20, "seed": 43}')) FROM gen;
INSERT INTO bytes SELECT 'defaults, seed 0', md5(media_reco.forest_fit(f, y, '{"n_trees": 100, "seed": 0}')) FROM gen;
INSERT INTO bytes SELECT 'two-argument form', md5(media_reco.forest_fit(f, y)) FROM gen;
SELECT how, h = (SELECT h FROM bytes WHERE how = 'ordered') AS same_as_ordered FROM bytes WHERE how <> 'ordered';
SELECT (SELECT h FROM bytes WHERE how = 'defaults, seed 0') = (SELECT h FROM bytes WHERE how = 'two-argument form')
       AS defaults_match;

-- a parallel plan: Partial Aggregate in workers, combine + serial/deserial, the same model bytes
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
ALTER TABLE gen SET (parallel_workers = 2);
EXPLAIN (COSTS OFF) SELECT media_reco.forest_fit(f, y, '{"n_trees": 20, "seed": 42}') FROM gen;
SELECT md5(media_reco.forest_fit(f, y, '{"n_trees": 20, "seed": 42}')) = (SELECT h FROM bytes WHERE how = 'ordered')
       AS parallel_same_bytes FROM gen;
-- workers whose rows are all skipped hand over no state
CREATE TABLE all_null AS SELECT ARRAY[i::float8] AS f, NULL::float8 AS y FROM generate_series(1, 20000) i;
ALTER TABLE all_null SET (parallel_workers = 2);
SELECT pg_temp.expect_error($$SELECT media_reco.forest_fit(f, y) FROM all_null$$);
UPDATE all_null SET y = (f[1] > 19990)::int WHERE f[1] > 19980;
SELECT media_reco.predict(media_reco.forest_fit(f, y, '{"n_trees": 3}'), ARRAY[19999.0]) FROM all_null;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;

-- quality on the generated rule: out-of-sample accuracy of a seeded forest
CREATE TABLE gen_test AS
SELECT ARRAY[(i * 7919 % 1000) / 10.0, (i * 104729 % 997) / 10.0, (i % 13)::float8, (i * 31 % 101)::float8] AS f,
       (((i * 7919 % 1000) / 10.0 + (i % 13) * 3 > 60))::int::float8 AS y
FROM generate_series(3001, 4000) i;
SELECT avg((media_reco.predict(m.model, f) = y)::int) > 0.95 AS accurate
FROM gen_test, (SELECT media_reco.forest_fit(f, y, '{"n_trees": 30, "seed": 1}') AS model FROM gen) m;

-- probabilities: in [0, 1], summing to 1, one per class
SELECT bool_and(abs(p[1] + p[2] - 1) < 1e-12 AND p[1] BETWEEN 0 AND 1) AS sums_to_one, min(cardinality(p)) AS classes
FROM (SELECT media_reco.predict_proba(m.model, f) AS p
      FROM gen_test, (SELECT media_reco.forest_fit(f, y, '{"n_trees": 30, "seed": 1}') AS model FROM gen) m) s;

-- predict may stop walking trees once the class is decided: it always agrees with the full average
SELECT bool_and(media_reco.predict(m.model, f) = CASE WHEN p[2] > p[1] THEN 1 ELSE 0 END) AS binary_agrees,
       count(*) AS rows
FROM gen_test, (SELECT media_reco.forest_fit(f, y, '{"n_trees": 50, "seed": 1}') AS model FROM gen) m,
     LATERAL (SELECT media_reco.predict_proba(m.model, f) AS p) pp;
SELECT bool_and(media_reco.predict(m.model, f) =
                (SELECT c - 1 FROM unnest(p) WITH ORDINALITY u(v, c) ORDER BY v DESC, c LIMIT 1)) AS multiclass_agrees
FROM gen_test, (SELECT media_reco.forest_fit(f, (f[1]::int % 5)::float8, '{"n_trees": 30, "seed": 2}') AS model FROM gen) m,
     LATERAL (SELECT media_reco.predict_proba(m.model, f) AS p) pp;
-- a tie that only the averages show: leaves {.2,.3,.3,.2}, {.1,.3,.2,.4}, {.3,.3,.4,0} sum classes 1
-- and 2 to 0.8999999999999999 and 0.9, both 0.3 once averaged, so the smaller class (1) wins, as in
-- predict_proba and top_classes
CREATE TABLE tie4 AS SELECT ARRAY[i::float8] AS x, (i % 4)::float8 AS y FROM generate_series(1, 10) i;
SELECT media_reco.predict(m, ARRAY[0.0]) AS predicted, media_reco.predict_proba(m, ARRAY[0.0]) AS proba
FROM (SELECT media_reco.forest_fit(x, y, '{"n_trees": 3, "seed": 37, "min_samples_split": 1000}') AS m FROM tie4) f;

-- a node that saw no missing value sends them to the larger child, the right one on a tie: scikit-learn's
-- own test (test_missing_values_on_equal_nodes_no_missing) expects the mean of the last 5, then last 4 y
SELECT n, round(media_reco.predict(m, ARRAY['NaN'::float8])::numeric, 12) AS nan_prediction, expected
FROM (VALUES (9, round((1.4 + 1.4 + 1.5 + 1.6 + 2.6) / 5, 12)), (8, round((1.4 + 1.4 + 1.5 + 1.6) / 4, 12))) v(n, expected),
     LATERAL (SELECT media_reco.forest_fit(ARRAY[x], y,
                '{"task": "regression", "n_trees": 1, "bootstrap": false, "max_depth": 1}') AS m
                FROM (SELECT * FROM unnest('{0,1,2,3,8,9,11,12,15}'::float8[], '{0.1,0.2,0.3,0.2,1.4,1.4,1.5,1.6,2.6}'::float8[])
                      WITH ORDINALITY AS d(x, y, o) WHERE o <= n) d) f
ORDER BY n DESC;

-- regression split scores do not lose the signal under a large offset or overflow on huge labels:
-- the exact split of y = c + (x > 50) is x <= 50.5 whatever c, and 1e200 / 2e200 split at 5.5
SELECT c AS offset_, media_reco.predict(m, ARRAY[50.0]) - c AS at_50, media_reco.predict(m, ARRAY[51.0]) - c AS at_51
FROM (VALUES (0::float8), (1e8), (1e10)) v(c),
     LATERAL (SELECT media_reco.forest_fit(ARRAY[i::float8], c + (i > 50)::int,
                '{"task": "regression", "n_trees": 1, "bootstrap": false, "max_depth": 1}') AS m
                FROM generate_series(1, 100) i) f
ORDER BY c;
SELECT x, media_reco.predict(m, ARRAY[x]) AS predicted
FROM (SELECT media_reco.forest_fit(ARRAY[i::float8], CASE WHEN i <= 5 THEN 1e200 ELSE 2e200 END,
        '{"task": "regression", "n_trees": 1, "bootstrap": false, "max_depth": 1}') AS m
        FROM generate_series(1, 10) i) f,
     (VALUES (1.0), (5.0), (6.0), (10.0)) v(x)
ORDER BY x;
CREATE TABLE huge_reg AS SELECT i::float8 AS x, (i * 7 % 5)::float8 AS z,
       CASE WHEN i <= 20 THEN 1e200 ELSE 2e200 END AS y FROM generate_series(1, 40) i;
SELECT model_name, oob_score IS NOT NULL AND oob_score > 0.5 AS oob_finite_and_good
FROM media_reco.train_forest('huge_reg', 'huge_reg', 'y', '{x,z}', '{"task": "regression", "n_trees": 10, "seed": 1}');
SELECT feature, importance > 0.9 AS dominant FROM media_reco.feature_importance('huge_reg') ORDER BY rank;
SELECT media_reco.drop_model('huge_reg');

-- options change the forest as documented (4 features: sqrt, log2 and 0.5 all mean 2, the default)
SELECT opt, md5(media_reco.forest_fit(f, y, ('{"n_trees": 5, "seed": 1, ' || opt || '}')::jsonb)) <>
            md5(media_reco.forest_fit(f, y, '{"n_trees": 5, "seed": 1}')) AS changes_model
FROM gen, (VALUES ('"max_depth": 3'), ('"min_samples_leaf": 20'), ('"min_samples_split": 50'),
                  ('"max_features": 1'), ('"max_features": 0.5'), ('"max_features": "log2"'),
                  ('"bootstrap": false'), ('"sample_fraction": 0.5'), ('"class_weight": "balanced"'),
                  ('"max_features": "sqrt"'), ('"max_features": "all"'), ('"max_features": 0.75')) o(opt)
GROUP BY opt ORDER BY opt;

-- errors: arguments and data
SELECT pg_temp.expect_error($$SELECT media_reco.forest_fit(f, y, NULL) FROM xor$$);
SELECT pg_temp.expect_error($$SELECT media_reco.forest_fit(f, y, '[1]') FROM xor$$);
SELECT pg_temp.expect_error($$SELECT media_reco.forest_fit(f, y, '{"n_tree": 5}') FROM xor$$);
SELECT pg_temp.expect_error($$SELECT media_reco.forest_fit(f, y, '{"n_trees": 0}') FROM xor$$);
SELECT pg_temp.expect_error($$SELECT media_reco.forest_fit(f, y, '{"n_trees": 2.5}') FROM xor$$);
SELECT pg_temp.expect_error($$SELECT media_reco.forest_fit(f, y, '{"n_trees": "many"}') FROM xor$$);
SELECT pg_temp.expect_error($$SELECT media_reco.forest_fit(f, y, '{"task": "ranking"}') FROM xor$$);
SELECT pg_temp.expect_error($$SELECT media_reco.forest_fit(f, y, '{"max_depth": 0}') FROM xor$$);
SELECT pg_temp.expect_error($$SELECT media_reco.forest_fit(f, y, '{"min_samples_leaf": 0}') FROM xor$$);
SELECT pg_temp.expect_error($$SELECT media_reco.forest_fit(f, y, '{"min_samples_split": 1}') FROM xor$$);
SELECT pg_temp.expect_error($$SELECT media_reco.forest_fit(f, y, '{"max_features": 0}') FROM xor$$);
SELECT pg_temp.expect_error($$SELECT media_reco.forest_fit(f, y, '{"max_features": 3}') FROM xor$$);
SELECT pg_temp.expect_error($$SELECT media_reco.forest_fit(f, y, '{"max_features": "half"}') FROM xor$$);
SELECT pg_temp.expect_error($$SELECT media_reco.forest_fit(f, y, '{"bootstrap": 1}') FROM xor$$);
SELECT pg_temp.expect_error($$SELECT media_reco.forest_fit(f, y, '{"sample_fraction": 0}') FROM xor$$);
SELECT pg_temp.expect_error($$SELECT media_reco.forest_fit(f, y, '{"sample_fraction": 1.5}') FROM xor$$);
SELECT pg_temp.expect_error($$SELECT media_reco.forest_fit(f, y, '{"class_weight": "auto"}') FROM xor$$);
SELECT pg_temp.expect_error($$SELECT media_reco.forest_fit(f, y, '{"task": "regression", "class_weight": "balanced"}') FROM xor$$);
SELECT pg_temp.expect_error($$SELECT media_reco.forest_fit(f, y, '{"seed": "x"}') FROM xor$$);
SELECT pg_temp.expect_error($$SELECT media_reco.forest_fit(f, y) FROM xor WHERE false$$);
SELECT pg_temp.expect_error($$SELECT media_reco.forest_fit(f, 1) FROM xor$$);
SELECT pg_temp.expect_error($$SELECT media_reco.forest_fit(f, y) FROM (VALUES (ARRAY[1.0::float8], 0.0::float8), (ARRAY[1, 2], 1)) v(f, y)$$);
SELECT pg_temp.expect_error($$SELECT media_reco.forest_fit(ARRAY[]::float8[], 1.0)$$);
SELECT pg_temp.expect_error($$SELECT media_reco.forest_fit(ARRAY[[1.0, 2.0]], 1.0)$$);
SELECT pg_temp.expect_error($$SELECT media_reco.forest_fit(ARRAY['Infinity'::float8], 1.0)$$);
SELECT pg_temp.expect_error($$SELECT media_reco.forest_fit(ARRAY[1.0], 'NaN')$$);
SELECT pg_temp.expect_error($$SELECT media_reco.forest_fit(ARRAY[1.0], '-Infinity')$$);
SELECT pg_temp.expect_error($$SELECT media_reco.forest_fit(ARRAY[i::float8], i % 20001, '{"n_trees": 1}') FROM generate_series(1, 20002) i$$);
SET maintenance_work_mem = '1MB';
SELECT pg_temp.expect_error($$SELECT media_reco.forest_fit(ARRAY[i, i, i, i, i, i, i, i]::float8[], i % 2) FROM generate_series(1, 20000) i$$);
RESET maintenance_work_mem;

-- errors: prediction on a value
SELECT pg_temp.expect_error($$SELECT media_reco.predict(model, ARRAY[1.0, 2.0]) FROM m$$);
SELECT pg_temp.expect_error($$SELECT media_reco.predict(model, ARRAY[[1.0]]) FROM m$$);
SELECT pg_temp.expect_error($$SELECT media_reco.predict(model, ARRAY['-Infinity'::float8]) FROM m$$);
SELECT media_reco.predict(model, NULL) IS NULL AS null_features_give_null FROM m;
SELECT pg_temp.expect_error($$SELECT media_reco.predict_proba(media_reco.forest_fit(ARRAY[x], y, '{"task": "regression"}'), ARRAY[1.0]) FROM reg$$);

-- corrupted model bytes: every variant is 22P03, never a crash
SELECT length(model) AS model_bytes FROM m;
SELECT cut, pg_temp.expect_error(format('SELECT media_reco.predict(substr(model, 1, %s), ARRAY[1.0]) FROM m', cut))
FROM (VALUES (0), (3), (23), (24), (30), (60), (100), (-1)) c(cut0),
     LATERAL (SELECT CASE WHEN cut0 < 0 THEN length(model) + cut0 ELSE cut0 END AS cut FROM m) l;
SELECT pg_temp.expect_error($$SELECT media_reco.predict(model || '\x00'::bytea, ARRAY[1.0]) FROM m$$) AS padded;
SELECT pos, pg_temp.expect_error(format('SELECT media_reco.predict(set_byte(model, %s, get_byte(model, %s) # 1), ARRAY[1.0]) FROM m', pos, pos))
FROM (VALUES (0), (4), (6), (8), (16), (24), (30), (44), (80), (100)) p(pos);
SELECT pg_temp.expect_error($$SELECT media_reco.predict('\x00'::bytea, ARRAY[1.0])$$) AS one_byte;
SELECT pg_temp.expect_error($$SELECT media_reco.predict(decode(repeat('00', 200), 'hex'), ARRAY[1.0])$$) AS zeros;
SELECT pg_temp.expect_error($$SELECT media_reco.predict(set_byte(set_byte(set_byte(set_byte(model, 0, 49), 1, 77), 2, 82), 3, 77), ARRAY[1.0]) FROM m$$) AS byte_swapped_magic;
SELECT pg_temp.expect_error($$SELECT media_reco.predict(set_byte(model, 4, 2), ARRAY[1.0]) FROM m$$) AS future_version;
SELECT pg_temp.expect_error($$SELECT media_reco.predict(set_byte(model, 6, 9), ARRAY[1.0]) FROM m$$) AS unknown_kind;

-- hand-crafted bytes with a valid checksum: the structure is still checked
\i test/sql/blob_helpers.sql
-- the stump: 1 feature, 2 classes, 1 tree; payload at 24: task, n_features@28, n_classes@32,
-- n_trees@36, classes@40, importance@56, n_nodes@64, n_leaves@68, nodes@72 (16 bytes each),
-- leaf values@120 (2 x 2 doubles), node covers@152 (3 doubles; forest payload version 1 at 25)
SELECT pg_temp.reseal(model) = model AS reseal_is_identity FROM m;
SELECT what, pg_temp.expect_error(format('SELECT media_reco.predict(%L::bytea, ARRAY[1.0])', bad))
FROM m, LATERAL (VALUES
  ('task 7',             pg_temp.reseal(set_byte(model, 24, 7))),
  ('0 features',         pg_temp.reseal(pg_temp.put_u32(model, 28, 0))),
  ('huge class count',   pg_temp.reseal(pg_temp.put_u32(model, 32, 2000000000))),
  ('1 class',            pg_temp.reseal(pg_temp.put_u32(model, 32, 1))),
  ('huge tree count',    pg_temp.reseal(pg_temp.put_u32(model, 36, 2000000000))),
  ('classes unsorted',   pg_temp.reseal(set_byte(model, 47, 127))),
  ('huge node count',    pg_temp.reseal(pg_temp.put_u32(model, 64, 1000000000))),
  ('more leaves than nodes', pg_temp.reseal(pg_temp.put_u32(model, 68, 9))),
  ('child backwards',    pg_temp.reseal(pg_temp.put_u32(model, 100, 1))),
  ('child past the end', pg_temp.reseal(pg_temp.put_u32(model, 84, 2))),
  ('feature 5 of 1',     pg_temp.reseal(pg_temp.put_u32(model, 80, 5))),
  ('NaN threshold',      pg_temp.reseal(overlay(model PLACING '\x000000000000f87f'::bytea FROM 73))),
  ('leaf index 9',       pg_temp.reseal(pg_temp.put_u32(model, 96, 9))),
  ('leaf value 2',       pg_temp.reseal(overlay(model PLACING '\x0000000000000040'::bytea FROM 121))),
  ('payload version 2',  pg_temp.reseal(set_byte(model, 25, 2))),
  ('root cover -1',      pg_temp.reseal(overlay(model PLACING '\x000000000000f0bf'::bytea FROM 153))),
  ('leaf cover NaN',     pg_temp.reseal(overlay(model PLACING '\x000000000000f87f'::bytea FROM 161))),
  ('covers not summing', pg_temp.reseal(overlay(model PLACING '\x0000000000002240'::bytea FROM 161))),
  ('covers cut off',     pg_temp.reseal(pg_temp.put_u32(substr(model, 1, 168), 8, 144)))
) v(what, bad);
-- the stump's covers: 4 rows at the root, 2 and 2 (x <= 2.5 and the rest) in its leaves
-- (doubles 4.0, 2.0, 2.0 in little-endian byte order)
SELECT substr(model, 153, 24) = '\x000000000000104000000000000000400000000000000040'::bytea AS covers_4_2_2 FROM m;
-- a tree whose two splits share a child pair (a DAG, not a tree) is rejected before any walk
-- (written in forest payload version 0, without covers, which still loads)
CREATE FUNCTION pg_temp.node(info bigint, child bigint) RETURNS bytea LANGUAGE sql IMMUTABLE AS $$
  SELECT pg_temp.put_u32(pg_temp.put_u32(decode(repeat('00', 16), 'hex'), 8, info), 12, child) $$;
CREATE TEMP TABLE dag AS
SELECT set_byte(substr(model, 1, 64), 25, 0) || pg_temp.put_u32(pg_temp.put_u32(decode(repeat('00', 8), 'hex'), 0, 5), 4, 2)
       || pg_temp.node(0, 1) || pg_temp.node(0, 3) || pg_temp.node(0, 3) || pg_temp.node(0, 0) || pg_temp.node(1, 0)
       || substr(model, 121, 32) AS b
FROM m;
UPDATE dag SET b = pg_temp.reseal(pg_temp.put_u32(b, 8, length(b) - 24));
SELECT pg_temp.expect_error(format('SELECT media_reco.predict(%L::bytea, ARRAY[1.0])', b)) AS shared_child FROM dag;
-- the same bytes with the second split turned into a leaf load fine
UPDATE dag SET b = pg_temp.reseal(pg_temp.put_u32(b, 116, 0));
SELECT media_reco.predict(b, ARRAY[1.0]) AS repaired FROM dag;

-- class_weight "balanced": weights n / (classes * n_c), and a leaf's distribution is the weighted
-- class fraction (as scikit-learn's). 9 rows of class 0 and 1 of class 1 in one leaf (no split is
-- allowed): weights 10/18 and 10/2, so 9 * 10/18 = 5 against 1 * 5 = 5, [0.5, 0.5], a tie that goes
-- to the smaller class; unweighted [0.9, 0.1]
CREATE TABLE imbalanced AS SELECT ARRAY[i::float8] AS f, (i = 10)::int::float8 AS y FROM generate_series(1, 10) i;
SELECT cw, media_reco.predict_proba(m, ARRAY[10.0]) AS proba, media_reco.predict(m, ARRAY[10.0]) AS class
FROM (VALUES ('null'), ('"balanced"')) v(cw),
     LATERAL (SELECT media_reco.forest_fit(f, y, ('{"n_trees": 1, "bootstrap": false, "min_samples_split": 1000, '
                                               || '"class_weight": ' || cw || '}')::jsonb) AS m FROM imbalanced) f
ORDER BY cw;
-- 3 classes (14, 7, 3 rows) on x = 1..24, depth 2: the weights move the splits (8.5, 19.5, 21.5
-- weighted against 5.5, 8.5, 19.5) and the leaves. Expected values from scikit-learn 1.2.1:
--   y = [1,1,0,1,0,1,1,1,0,0,0,0,0,1,0,0,0,0,0,2,2,0,0,2]; X = arange(1, 25)
--   DecisionTreeClassifier(class_weight=cw, max_depth=2).fit(X, y).predict_proba(probes), the same
--   as RandomForestClassifier(n_estimators=1, bootstrap=False, max_features=None, ...)
-- by hand for x = 1 weighted: rows 1..8 hold 2 of class 0 (weight 24/42 each) and 6 of class 1
-- (24/21 each): 8/7 against 48/7, so 1/7 and 6/7
CREATE TABLE three AS SELECT x::float8 AS x, y::float8 AS y
FROM unnest('{1,1,0,1,0,1,1,1,0,0,0,0,0,1,0,0,0,0,0,2,2,0,0,2}'::int[]) WITH ORDINALITY u(y, x);
CREATE TABLE three_sklearn (cw text, x float8, p0 float8, p1 float8, p2 float8);
INSERT INTO three_sklearn VALUES
  ('null', 1, 0.400000000000000, 0.600000000000000, 0.000000000000000),
  ('null', 6, 0.000000000000000, 1.000000000000000, 0.000000000000000),
  ('null', 9, 0.909090909090909, 0.090909090909091, 0.000000000000000),
  ('null', 20, 0.400000000000000, 0.000000000000000, 0.600000000000000),
  ('null', 22, 0.400000000000000, 0.000000000000000, 0.600000000000000),
  ('null', 24, 0.400000000000000, 0.000000000000000, 0.600000000000000),
  ('"balanced"', 1, 0.142857142857143, 0.857142857142857, 0.000000000000000),
  ('"balanced"', 6, 0.142857142857143, 0.857142857142857, 0.000000000000000),
  ('"balanced"', 9, 0.833333333333333, 0.166666666666667, 0.000000000000000),
  ('"balanced"', 20, 0.000000000000000, 0.000000000000000, 1.000000000000000),
  ('"balanced"', 22, 0.300000000000000, 0.000000000000000, 0.700000000000000),
  ('"balanced"', 24, 0.300000000000000, 0.000000000000000, 0.700000000000000);
SELECT s.cw, s.x, round(p[1]::numeric, 12) AS p0, round(p[2]::numeric, 12) AS p1, round(p[3]::numeric, 12) AS p2,
       abs(p[1] - s.p0) < 1e-12 AND abs(p[2] - s.p1) < 1e-12 AND abs(p[3] - s.p2) < 1e-12 AS matches_sklearn,
       media_reco.predict(m, ARRAY[s.x]) AS class
FROM three_sklearn s,
     LATERAL (SELECT media_reco.forest_fit(ARRAY[x], y, ('{"n_trees": 1, "bootstrap": false, "max_depth": 2, '
                                            || '"max_features": "all", "class_weight": ' || s.cw || '}')::jsonb) AS m
                FROM three) f,
     LATERAL (SELECT media_reco.predict_proba(m, ARRAY[s.x]) AS p) pp
ORDER BY s.cw DESC, s.x;

-- oob_score: each row scored only by the trees that did not draw it. On labels independent of the
-- features (a seeded hash) it is near chance; scoring in-bag rows instead gives ~1 (fully grown
-- trees memorise their rows). For regression on noise, R² near or below 0
CREATE TABLE noise AS
SELECT i, (abs(hashint4(i)) % 1000)::float8 AS a, (abs(hashint4(i + 100000)) % 1000)::float8 AS b,
       (abs(hashint4(i + 200000)) % 1000)::float8 AS c, abs(hashint4(i + 300000)) % 2 AS y,
       (abs(hashint4(i + 400000)) % 1000)::float8 AS ry
FROM generate_series(1, 400) i;
SELECT avg(y) BETWEEN 0.45 AND 0.55 AS balanced FROM noise;
SELECT o AS options, t.oob_score BETWEEN 0.35 AND 0.65 AS near_chance
FROM (VALUES ('{"n_trees": 50, "seed": 1}'), ('{"n_trees": 50, "seed": 2, "bootstrap": false, "sample_fraction": 0.5}'),
             ('{"n_trees": 50, "seed": 3, "class_weight": "balanced"}')) v(o),
     LATERAL media_reco.train_forest('noise', 'noise', 'y', '{a,b,c}', o::jsonb) t
ORDER BY o;
SELECT oob_score < 0.1 AS r2_not_above_chance
FROM media_reco.train_forest('noise', 'noise', 'ry', '{a,b,c}', '{"task": "regression", "n_trees": 50, "seed": 1}');
-- exact by hand: 4 rows with one constant feature (no split), labels 0, 0, 1, 1. A tree's leaf is its
-- sample's class fraction; a tree that did not draw row i drew from the other three (one of i's class,
-- two of the other), so on average it gives i's class 1/3: with 1000 trees (each row out of bag in
-- ~320) every row is predicted the other class, oob_score = 0 exactly (scikit-learn 1.2.1,
-- RandomForestClassifier(n_estimators=1000, oob_score=True), gives 0.0 for seeds 0, 1, 2).
-- Scoring in-bag rows gives 1.
CREATE TABLE four AS SELECT 1.0::float8 AS x, y FROM unnest('{0,0,1,1}'::int[]) y;
SELECT o AS options, t.oob_score
FROM (VALUES ('{"n_trees": 1000, "seed": 1}'), ('{"n_trees": 1000, "seed": 2, "bootstrap": false, "sample_fraction": 0.5}')) v(o),
     LATERAL media_reco.train_forest('four', 'four', 'y', '{x}', o::jsonb) t
ORDER BY o;
-- and 1 exactly where every tree that saw both classes separates them (50 copies of each of two rows)
CREATE TABLE two_rows AS SELECT (i % 2)::float8 AS x, i % 2 AS y FROM generate_series(1, 100) i;
SELECT oob_score FROM media_reco.train_forest('two_rows', 'two_rows', 'y', '{x}', '{"n_trees": 20, "seed": 1}');
-- no row out of bag (bootstrap false, sample_fraction 1): no score, NULL in the result and in metrics
SELECT oob_score IS NULL AS oob_null
FROM media_reco.train_forest('no_oob', 'noise', 'y', '{a,b,c}', '{"n_trees": 5, "bootstrap": false}');
SELECT metrics -> 'oob_score' AS metrics_oob FROM media_reco.models WHERE name = 'no_oob';
SELECT media_reco.drop_model(n) FROM unnest(ARRAY['noise', 'four', 'two_rows', 'no_oob']) n;
