CREATE TABLE chunks_by_hash (
    hash       BLOB    PRIMARY KEY,
    size       INTEGER NOT NULL,
    refs       INTEGER NOT NULL DEFAULT 0 CHECK (refs >= 0),
    deleting   INTEGER NOT NULL DEFAULT 0,
    zero_since INTEGER,
    created_at INTEGER NOT NULL,
    pending    INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
INSERT INTO chunks_by_hash (hash, size, refs, deleting, zero_since, created_at, pending)
    SELECT hash, size, refs, deleting, zero_since, created_at, pending FROM chunks;
DROP TABLE chunks;
ALTER TABLE chunks_by_hash RENAME TO chunks;
CREATE INDEX chunks_zero ON chunks(zero_since) WHERE zero_since IS NOT NULL;
CREATE INDEX chunks_deleting ON chunks(hash) WHERE deleting = 1;
