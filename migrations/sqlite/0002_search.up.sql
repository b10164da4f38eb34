-- Full-text search over names and MIME types: an FTS5 index with the
-- trigram tokenizer, so that any substring of three characters or more is
-- found through the index (shorter words fall back to LIKE). Kept in sync
-- with entries by triggers.
CREATE VIRTUAL TABLE entries_fts USING fts5(name, mime, content = 'entries', content_rowid = 'id', tokenize = 'trigram');

CREATE TRIGGER entries_fts_insert AFTER INSERT ON entries BEGIN
    INSERT INTO entries_fts (rowid, name, mime) VALUES (new.id, new.name, new.mime);
END;
CREATE TRIGGER entries_fts_delete AFTER DELETE ON entries BEGIN
    INSERT INTO entries_fts (entries_fts, rowid, name, mime) VALUES ('delete', old.id, old.name, old.mime);
END;
CREATE TRIGGER entries_fts_update AFTER UPDATE OF name, mime ON entries BEGIN
    INSERT INTO entries_fts (entries_fts, rowid, name, mime) VALUES ('delete', old.id, old.name, old.mime);
    INSERT INTO entries_fts (rowid, name, mime) VALUES (new.id, new.name, new.mime);
END;

INSERT INTO entries_fts (entries_fts) VALUES ('rebuild');
