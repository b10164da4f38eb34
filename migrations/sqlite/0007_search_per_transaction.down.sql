DROP TRIGGER entries_fts_insert;
DROP TRIGGER entries_fts_delete;
DROP TRIGGER entries_fts_update;
DROP TABLE entries_fts_pending;

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
