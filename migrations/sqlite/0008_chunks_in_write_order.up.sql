-- The chunks table moves from the hash as its key to a rowid in the order
-- chunks are stored, with the hash unique beside it. A commit updates the
-- reference count of every chunk of the file, and the chunks of one file
-- are stored together: in write order they share a few pages, in hash
-- order each sits on a page of its own, and a commit of a 256-chunk file
-- rewrote about as many pages.
CREATE TABLE chunks_by_age (
    id         INTEGER PRIMARY KEY,
    hash       BLOB    NOT NULL UNIQUE,
    size       INTEGER NOT NULL,
    refs       INTEGER NOT NULL DEFAULT 0 CHECK (refs >= 0),  -- per occurrence, exact
    deleting   INTEGER NOT NULL DEFAULT 0,
    zero_since INTEGER,  -- when refs last became 0; NULL while referenced
    created_at INTEGER NOT NULL,
    pending    INTEGER NOT NULL DEFAULT 0
);
INSERT INTO chunks_by_age (hash, size, refs, deleting, zero_since, created_at, pending)
    SELECT hash, size, refs, deleting, zero_since, created_at, pending FROM chunks ORDER BY created_at;
DROP TABLE chunks;
ALTER TABLE chunks_by_age RENAME TO chunks;
CREATE INDEX chunks_zero ON chunks(zero_since) WHERE zero_since IS NOT NULL;
CREATE INDEX chunks_deleting ON chunks(hash) WHERE deleting = 1;
