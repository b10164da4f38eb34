-- Special files: FIFOs, sockets and character and block devices are
-- entries of kinds 4 to 7, with no content; rdev is a device's number as
-- the kernel encodes it (0 for the others). Entries keep an access time
-- (atime_ns), the modification time until set.
--
-- SQLite cannot change a CHECK constraint in place, so the table is built
-- anew, as SQLite's documentation describes: the migration runs with
-- foreign keys off and the store checks them after (PRAGMA
-- foreign_key_check). Ids stay as they are, and so does the AUTOINCREMENT
-- counter, since an id is never given out twice.
CREATE TABLE entries_new (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    owner_id       INTEGER NOT NULL REFERENCES users(id),
    parent_id      INTEGER REFERENCES entries(id),
    name           TEXT    NOT NULL,
    kind           INTEGER NOT NULL CHECK (kind BETWEEN 1 AND 7),
    mode           INTEGER NOT NULL,
    uid            INTEGER NOT NULL DEFAULT 0,
    gid            INTEGER NOT NULL DEFAULT 0,
    size           INTEGER NOT NULL DEFAULT 0,
    mtime_ns       INTEGER NOT NULL,
    ctime_ns       INTEGER NOT NULL,
    target         TEXT    NOT NULL DEFAULT '',
    mime           TEXT    NOT NULL DEFAULT '',
    cur_version    INTEGER NOT NULL DEFAULT 0,
    deleted_at     INTEGER,
    trash_root     INTEGER,
    cur_version_id INTEGER NOT NULL DEFAULT 0,
    rdev           INTEGER NOT NULL DEFAULT 0,
    atime_ns       INTEGER NOT NULL DEFAULT 0,
    CHECK ((parent_id IS NULL) = (name = ''))
);
INSERT INTO entries_new (id, owner_id, parent_id, name, kind, mode, uid, gid, size, mtime_ns, ctime_ns,
        target, mime, cur_version, deleted_at, trash_root, cur_version_id, atime_ns)
    SELECT id, owner_id, parent_id, name, kind, mode, uid, gid, size, mtime_ns, ctime_ns,
        target, mime, cur_version, deleted_at, trash_root, cur_version_id, mtime_ns FROM entries;
UPDATE sqlite_sequence SET seq = MAX(seq, COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'entries'), 0))
    WHERE name = 'entries_new';
DROP TABLE entries;
ALTER TABLE entries_new RENAME TO entries;

CREATE UNIQUE INDEX entries_live_name ON entries(parent_id, name) WHERE deleted_at IS NULL;
CREATE UNIQUE INDEX entries_root ON entries(owner_id) WHERE parent_id IS NULL;
CREATE INDEX entries_trash ON entries(trash_root) WHERE trash_root IS NOT NULL;
CREATE INDEX entries_owner ON entries(owner_id, kind);

-- The search index's triggers (0007), as they were.
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
