-- Sparse files: a version's manifest may hold holes (extents of zeros
-- that no chunk holds). data_size is how many bytes of an entry's current
-- version chunks hold (st_blocks of the mount); NULL, as for every entry
-- committed before holes existed, means all of size.
ALTER TABLE entries ADD COLUMN data_size INTEGER;
