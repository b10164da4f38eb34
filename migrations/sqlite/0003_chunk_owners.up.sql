-- Proof of possession: a user may reference a chunk only after sending its
-- bytes (an upload, a part, a chunk PUT) or committing it. Without this, a
-- user who learnt a file's chunk hashes could commit them and read the file,
-- and "which chunks are missing" would tell anyone what others store.
CREATE TABLE chunk_owners (
    user_id INTEGER NOT NULL REFERENCES users(id),
    hash    BLOB    NOT NULL,
    PRIMARY KEY (user_id, hash)
) WITHOUT ROWID;
