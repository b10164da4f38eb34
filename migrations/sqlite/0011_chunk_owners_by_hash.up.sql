-- Possession goes with the bytes: when GC deletes a chunk it deletes every
-- user's possession of it, found through this index. Possession of chunks
-- already gone is dropped here; it would otherwise come back when someone
-- stores the same bytes again.
CREATE INDEX chunk_owners_hash ON chunk_owners(hash);
DELETE FROM chunk_owners WHERE NOT EXISTS (SELECT 1 FROM chunks WHERE chunks.hash = chunk_owners.hash);
