DROP INDEX multipart_uploads_owner;
ALTER TABLE multipart_uploads DROP COLUMN deadline_ns;
UPDATE users SET used_bytes = used_bytes - (SELECT COALESCE(SUM(x.size), 0) FROM xattrs x JOIN entries e ON e.id = x.entry_id WHERE e.owner_id = users.id);
ALTER TABLE xattrs DROP COLUMN size;
DROP TABLE chunk_holds;
ALTER TABLE users DROP COLUMN held_bytes;
