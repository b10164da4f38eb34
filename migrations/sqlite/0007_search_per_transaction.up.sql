-- The full-text index is brought up to date once per write transaction
-- (the store runs the statements of its dialect's SearchFlush before each
-- commit) instead of by a trigger per row. FTS5 writes out what it holds
-- at every statement savepoint of a transaction that touched it, so a
-- trigger per row cost a new index segment per statement of a batch.
-- The triggers now only note which entries changed, and, for an entry
-- already in the index, the name and MIME type it was indexed under
-- (the first change of a transaction is the one that knows them). An
-- update that sets the same name and MIME type (every commit sets the
-- type) changes nothing to index.
DROP TRIGGER entries_fts_insert;
DROP TRIGGER entries_fts_delete;
DROP TRIGGER entries_fts_update;

CREATE TABLE entries_fts_pending (
    id INTEGER PRIMARY KEY,
    indexed INTEGER NOT NULL, -- 1: (old_name, old_mime) are in the index
    old_name TEXT,
    old_mime TEXT
);

CREATE TRIGGER entries_fts_insert AFTER INSERT ON entries
WHEN NOT EXISTS (SELECT 1 FROM entries_fts_pending WHERE id = new.id) BEGIN
    INSERT INTO entries_fts_pending (id, indexed) VALUES (new.id, 0);
END;
CREATE TRIGGER entries_fts_delete AFTER DELETE ON entries
WHEN NOT EXISTS (SELECT 1 FROM entries_fts_pending WHERE id = old.id) BEGIN
    INSERT INTO entries_fts_pending (id, indexed, old_name, old_mime) VALUES (old.id, 1, old.name, old.mime);
END;
CREATE TRIGGER entries_fts_update AFTER UPDATE OF name, mime ON entries
WHEN (old.name IS NOT new.name OR old.mime IS NOT new.mime)
    AND NOT EXISTS (SELECT 1 FROM entries_fts_pending WHERE id = old.id) BEGIN
    INSERT INTO entries_fts_pending (id, indexed, old_name, old_mime) VALUES (old.id, 1, old.name, old.mime);
END;
