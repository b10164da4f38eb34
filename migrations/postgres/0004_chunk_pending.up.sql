-- A chunk is recorded as pending before its bytes are stored, and becomes
-- stored after: so the collector never mistakes the bytes of a write in
-- flight for an orphan. Pending chunks cannot be referenced; stale ones are
-- swept after the grace period like unreferenced chunks.
ALTER TABLE chunks ADD COLUMN pending BOOLEAN NOT NULL DEFAULT FALSE;
CREATE INDEX chunks_deleting ON chunks(hash) WHERE deleting;

-- Multipart uploads expire when idle: each part pushes the deadline out by
-- this lifetime.
ALTER TABLE multipart_uploads ADD COLUMN idle_ns BIGINT NOT NULL DEFAULT 0;
