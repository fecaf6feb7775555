-- shared by the regression files: 'SQLSTATE: message (detail)' for a statement that must fail;
-- a CHECK violation's 'Failing row contains ...' detail (timestamps, ids) is left out
SET client_min_messages = warning;
CREATE OR REPLACE FUNCTION pg_temp.expect_error(stmt text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE detail text;
BEGIN
  EXECUTE stmt;
  RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;
  RETURN SQLSTATE || ': ' || SQLERRM || CASE WHEN detail <> '' AND detail NOT LIKE 'Failing row contains%' THEN ' (' || detail || ')' ELSE '' END;
END $$;
RESET client_min_messages;
