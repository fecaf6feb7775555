-- media_reco 0.4.0 -> 0.5.0 (the C library of 0.5.0 still serves a 0.4.0 schema, so
-- install it first).  Names qualified as in the install script (see its header).
-- Every object is left exactly as a fresh 0.5.0 install creates it
-- (test/t/007_upgrade.pl compares the catalogues).  Forests stored before the
-- update keep their bytes and predict as before; explaining one needs its node
-- covers, which only models trained by the 0.5.0 library store (55000 with a
-- hint to retrain otherwise).

\echo Use "ALTER EXTENSION media_reco UPDATE TO '0.5.0'" to load this file. \quit

-- Explaining predictions (section 14 of the install script).
-- All of them: STABLE: read media_reco.models (and media_reco.explain_steps for networks);
-- not STRICT: class NULL means the predicted class (a NULL model name, features or row is
-- 22004).  explain_prediction and explain_base_value are PARALLEL SAFE as predict: a
-- worker loads the model into its own cache.
CREATE FUNCTION media_reco.explain_prediction(model_name text, features double precision[],
    class double precision DEFAULT NULL)
RETURNS TABLE(feature text, value double precision, contribution double precision, rank integer)
AS 'MODULE_PATHNAME', 'explain_prediction_array'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION media_reco.explain_prediction(text, double precision[], double precision) IS
    'Per-feature contributions to a named model''s output for a feature array (the probability of class, by default the predicted class, or the regression value): exact path-dependent TreeSHAP for forests, integrated gradients for networks; they sum to the output minus explain_base_value. Ranked by |contribution|, ties by feature order.';
CREATE FUNCTION media_reco.explain_prediction(model_name text, "row" record,
    class double precision DEFAULT NULL)
RETURNS TABLE(feature text, value double precision, contribution double precision, rank integer)
AS 'MODULE_PATHNAME', 'explain_prediction_row'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION media_reco.explain_prediction(text, record, double precision) IS
    'explain_prediction for a row, the model''s columns matched by name: one row per model feature (a number, boolean or category column is one feature, an array column one per element).';
CREATE FUNCTION media_reco.explain_base_value(model_name text, class double precision DEFAULT NULL)
RETURNS double precision AS 'MODULE_PATHNAME', 'explain_base_value'
-- not STRICT: a NULL class of a classifier is 22004 with a hint, not a silent NULL.
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION media_reco.explain_base_value(text, double precision) IS
    'The output explain_prediction''s contributions start from: the cover-weighted mean output of a forest, a network''s output at the training mean (all-zero standardised input); class is required for a classifier.';
CREATE FUNCTION media_reco.explain_completeness(model_name text, features double precision[],
    class double precision DEFAULT NULL)
RETURNS TABLE(output double precision, base_value double precision,
              contributions double precision, completeness_error double precision,
              method text, steps integer, pieces integer) AS 'MODULE_PATHNAME', 'explain_completeness_array'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION media_reco.explain_completeness(text, double precision[], double precision) IS
    'One row: how exactly explain_prediction''s contributions add up for a feature array: the output, the base value, their sum and the completeness error sum - (output - base_value); method treeshap or integrated_gradients, with its Gauss-Legendre steps per piece (media_reco.explain_steps) and the pieces the path was cut into (a relu network: where a hidden unit changes sign).';
CREATE FUNCTION media_reco.explain_completeness(model_name text, "row" record,
    class double precision DEFAULT NULL)
RETURNS TABLE(output double precision, base_value double precision,
              contributions double precision, completeness_error double precision,
              method text, steps integer, pieces integer) AS 'MODULE_PATHNAME', 'explain_completeness_row'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION media_reco.explain_completeness(text, record, double precision) IS
    'explain_completeness for a row, the model''s columns matched by name.';
CREATE FUNCTION media_reco.shap_importance(model_name text, source regclass,
    sample integer DEFAULT 1000, seed bigint DEFAULT 0)
RETURNS TABLE(feature text, importance double precision, rank integer)
AS 'MODULE_PATHNAME', 'shap_importance'
-- STABLE: reads the source and media_reco.models; PARALLEL RESTRICTED: the source may be a
-- temporary table; not STRICT: a NULL argument is 22004.
LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION media_reco.shap_importance(text, regclass, integer, bigint) IS
    'Global importance from explanations: the mean |contribution| of each feature to each sampled row''s predicted class (or value) over a seeded sample of the source''s rows (the sample rows with the smallest hashint8extended(scan position, seed); every row when sample >= the row count).';

