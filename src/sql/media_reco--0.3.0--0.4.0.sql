-- media_reco 0.3.0 -> 0.4.0 (the C library of 0.4.0 still serves a 0.3.0,
-- 0.2.0 or 0.1.0 schema, so install it first).
-- Names qualified as in the install script (see its header).  Every object is
-- left exactly as a fresh 0.4.0 install creates it (test/t/007_upgrade.pl
-- compares the catalogues).

\echo Use "ALTER EXTENSION media_reco UPDATE TO '0.4.0'" to load this file. \quit

-- The neighbour lists inline and uncompressed where they fit (see the install
-- script).  Neither statement rewrites the table: lists stored before the
-- update keep their old (compressed or out-of-line) form until the next
-- refresh_neighbors of their recommender rewrites them.
ALTER TABLE media_reco.neighbor_store SET (toast_tuple_target = 4000);
ALTER TABLE media_reco.neighbor_store ALTER COLUMN neighbor_ids SET STORAGE MAIN,
                                      ALTER COLUMN similarities SET STORAGE MAIN;
