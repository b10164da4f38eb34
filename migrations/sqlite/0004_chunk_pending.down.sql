ALTER TABLE multipart_uploads DROP COLUMN idle_ns;
DROP INDEX chunks_deleting;
ALTER TABLE chunks DROP COLUMN pending;
