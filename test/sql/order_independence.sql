-- shared by ease.sql and rp3beta.sql: the stored lists depend neither on media_reco.threads nor on
-- the physical row order.  call is an item_similarity call with %s where the source (a literal) goes; it runs on
-- src with 1 and 2 threads and on a copy of src in another physical order with 5 threads.  One row:
-- the rows of the 1-thread result and the rows differing (both directions of EXCEPT) in the others.
CREATE FUNCTION pg_temp.check_order_independence(src regclass, call text)
RETURNS TABLE(rows bigint, threads_1_vs_2 bigint, shuffled_threads_5 bigint)
LANGUAGE plpgsql AS $check$
BEGIN
  EXECUTE format('CREATE TEMP TABLE oi_shuffled AS SELECT * FROM %s s ORDER BY md5(s::text)', src);
  PERFORM set_config('media_reco.threads', '1', true);
  EXECUTE format('CREATE TEMP TABLE oi1 AS SELECT * FROM ' || call, quote_literal(src::text));
  PERFORM set_config('media_reco.threads', '2', true);
  EXECUTE format('CREATE TEMP TABLE oi2 AS SELECT * FROM ' || call, quote_literal(src::text));
  PERFORM set_config('media_reco.threads', '5', true);
  EXECUTE format('CREATE TEMP TABLE oi5 AS SELECT * FROM ' || call, quote_literal('oi_shuffled'));
  RETURN QUERY
  SELECT (SELECT count(*) FROM oi1),
         (SELECT count(*) FROM (SELECT * FROM oi1 EXCEPT SELECT * FROM oi2) d)
         + (SELECT count(*) FROM (SELECT * FROM oi2 EXCEPT SELECT * FROM oi1) d),
         (SELECT count(*) FROM (SELECT * FROM oi1 EXCEPT SELECT * FROM oi5) d)
         + (SELECT count(*) FROM (SELECT * FROM oi5 EXCEPT SELECT * FROM oi1) d);
  DROP TABLE oi_shuffled, oi1, oi2, oi5;
END
$check$;
