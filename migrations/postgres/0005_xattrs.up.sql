-- Extended attributes of entries (the mount's getxattr/setxattr), as
-- opaque names and values; they go with the entry when it is purged.
CREATE TABLE xattrs (
    entry_id BIGINT NOT NULL REFERENCES entries(id) ON DELETE CASCADE,
    name     TEXT   NOT NULL,
    value    BYTEA  NOT NULL,
    PRIMARY KEY (entry_id, name)
);
