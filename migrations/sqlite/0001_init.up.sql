-- DFMS metadata schema, SQLite dialect. Times are Unix nanoseconds.
CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    email         TEXT    NOT NULL,
    email_key     TEXT    NOT NULL UNIQUE,  -- lower-cased email: emails are case-insensitive
    password_hash TEXT    NOT NULL DEFAULT '',
    display_name  TEXT    NOT NULL DEFAULT '',
    role          TEXT    NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin')),
    active        INTEGER NOT NULL DEFAULT 1,
    quota_bytes   INTEGER NOT NULL DEFAULT 0 CHECK (quota_bytes >= 0),
    used_bytes    INTEGER NOT NULL DEFAULT 0 CHECK (used_bytes >= 0),
    root_id       INTEGER,
    created_at    INTEGER NOT NULL
);

CREATE TABLE refresh_tokens (
    id          TEXT    PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users(id),
    family      TEXT    NOT NULL,
    expires_at  INTEGER NOT NULL,
    revoked     INTEGER NOT NULL DEFAULT 0,
    replaced_by TEXT,
    created_at  INTEGER NOT NULL
);
CREATE INDEX refresh_tokens_family ON refresh_tokens(family);
CREATE INDEX refresh_tokens_user ON refresh_tokens(user_id);

CREATE TABLE entries (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    owner_id    INTEGER NOT NULL REFERENCES users(id),
    parent_id   INTEGER REFERENCES entries(id),
    name        TEXT    NOT NULL,
    kind        INTEGER NOT NULL CHECK (kind IN (1, 2, 3)),
    mode        INTEGER NOT NULL,
    uid         INTEGER NOT NULL DEFAULT 0,
    gid         INTEGER NOT NULL DEFAULT 0,
    size        INTEGER NOT NULL DEFAULT 0,
    mtime_ns    INTEGER NOT NULL,
    ctime_ns    INTEGER NOT NULL,
    target      TEXT    NOT NULL DEFAULT '',
    mime        TEXT    NOT NULL DEFAULT '',
    cur_version INTEGER NOT NULL DEFAULT 0,
    deleted_at  INTEGER,
    trash_root  INTEGER,
    CHECK ((parent_id IS NULL) = (name = ''))
);
-- One live name per directory; the root of each owner is its only parentless entry.
CREATE UNIQUE INDEX entries_live_name ON entries(parent_id, name) WHERE deleted_at IS NULL;
CREATE UNIQUE INDEX entries_root ON entries(owner_id) WHERE parent_id IS NULL;
CREATE INDEX entries_trash ON entries(trash_root) WHERE trash_root IS NOT NULL;
CREATE INDEX entries_owner ON entries(owner_id, kind);

CREATE TABLE versions (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    entry_id    INTEGER NOT NULL REFERENCES entries(id),
    number      INTEGER NOT NULL CHECK (number > 0),
    size        INTEGER NOT NULL CHECK (size >= 0),
    sha256      BLOB    NOT NULL,
    manifest    BLOB    NOT NULL,  -- 36-byte records: chunk hash, big-endian uint32 length
    chunk_count INTEGER NOT NULL,
    base        INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL,
    created_by  INTEGER NOT NULL,
    UNIQUE (entry_id, number)
);

CREATE TABLE chunks (
    hash       BLOB    PRIMARY KEY,
    size       INTEGER NOT NULL,
    refs       INTEGER NOT NULL DEFAULT 0 CHECK (refs >= 0),  -- per occurrence, exact
    deleting   INTEGER NOT NULL DEFAULT 0,
    zero_since INTEGER,  -- when refs last became 0; NULL while referenced
    created_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX chunks_zero ON chunks(zero_since) WHERE zero_since IS NOT NULL;

CREATE TABLE storage_nodes (
    id         TEXT    PRIMARY KEY,
    endpoint   TEXT    NOT NULL,
    weight     INTEGER NOT NULL DEFAULT 100 CHECK (weight >= 0),
    state      TEXT    NOT NULL DEFAULT 'up' CHECK (state IN ('up', 'suspect', 'down', 'draining')),
    last_probe INTEGER,
    failures   INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);

CREATE TABLE chunk_replicas (
    hash        BLOB    NOT NULL,
    node_id     TEXT    NOT NULL REFERENCES storage_nodes(id),
    stored_at   INTEGER NOT NULL,
    verified_at INTEGER,
    PRIMARY KEY (hash, node_id)
) WITHOUT ROWID;
CREATE INDEX chunk_replicas_node ON chunk_replicas(node_id);

CREATE TABLE multipart_uploads (
    id         TEXT    PRIMARY KEY,
    owner_id   INTEGER NOT NULL REFERENCES users(id),
    parent_id  INTEGER NOT NULL REFERENCES entries(id),
    name       TEXT    NOT NULL,
    size       INTEGER NOT NULL DEFAULT 0,
    part_size  INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX multipart_uploads_expiry ON multipart_uploads(expires_at);

CREATE TABLE multipart_parts (
    upload_id  TEXT    NOT NULL REFERENCES multipart_uploads(id),
    number     INTEGER NOT NULL CHECK (number BETWEEN 1 AND 10000),
    size       INTEGER NOT NULL,
    sha256     BLOB    NOT NULL,
    manifest   BLOB    NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (upload_id, number)
);

-- The change journal and outbox: one row per mutation, written in the mutation's transaction.
CREATE TABLE changes (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    owner_id  INTEGER NOT NULL,
    entry_id  INTEGER NOT NULL,
    parent_id INTEGER NOT NULL DEFAULT 0,
    op        TEXT    NOT NULL,
    version   INTEGER NOT NULL DEFAULT 0,
    at        INTEGER NOT NULL,
    published INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX changes_owner ON changes(owner_id, seq);
CREATE INDEX changes_unpublished ON changes(seq) WHERE published = 0;
