-- media_reco 0.7.0 -> 0.8.0 (the C library of 0.8.0 still serves a 0.7.0 schema, so
-- install it first).  Names qualified as in the install script (see its header).
-- Every object is left exactly as a fresh 0.8.0 install creates it
-- (test/t/007_upgrade.pl compares the catalogues).  0.8.0 changes only the
-- comment of pair_sums_neighbors: with the 0.8.0 library, a cosine over
-- weights off a power-of-two grid is added in fixed point on one server and
-- on the shards, so its pair sums merge too; nothing else changes and no data
-- is rewritten.

\echo Use "ALTER EXTENSION media_reco UPDATE TO '0.8.0'" to load this file. \quit
COMMENT ON FUNCTION media_reco.pair_sums_neighbors(bytea, text, integer, integer, double precision) IS
    'Merge the bundle of media_reco.pair_sums into the top-k neighbours of every item (cosine, jaccard or conditional), bit for bit the lists item_similarity computes over the same rows; weights off a power-of-two grid (ln(1 + plays)) merge as fixed-point sums, exactly as one server adds them; 0A000 when an item''s weights span 2^22 : 1 or more (its fixed-point sums would be cut), 22P03 for damaged bytes.';
