-- shared by the regression files: recompute a model's CRC-32C after editing its bytes
CREATE FUNCTION pg_temp.crc32c(b bytea) RETURNS bigint LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE crc bigint := 4294967295;
BEGIN
  FOR i IN 0 .. length(b) - 1 LOOP
    crc := crc # get_byte(b, i);
    FOR k IN 1 .. 8 LOOP
      crc := CASE WHEN crc & 1 = 1 THEN (crc >> 1) # 2197175160 ELSE crc >> 1 END;
    END LOOP;
  END LOOP;
  RETURN crc # 4294967295;
END $$;
CREATE FUNCTION pg_temp.put_u32(b bytea, pos int, v bigint) RETURNS bytea LANGUAGE sql IMMUTABLE AS $$
  SELECT set_byte(set_byte(set_byte(set_byte(b, pos, (v & 255)::int), pos + 1, ((v >> 8) & 255)::int),
                  pos + 2, ((v >> 16) & 255)::int), pos + 3, ((v >> 24) & 255)::int) $$;
CREATE FUNCTION pg_temp.reseal(b bytea) RETURNS bytea LANGUAGE sql IMMUTABLE AS $$
  SELECT pg_temp.put_u32(b, 16, pg_temp.crc32c(substr(b, 25))) $$;
