-- Hard links: an entry (the inode: kind, mode, owner, times, content,
-- history) keeps its first name in entries; each further name is a row
-- here. A name is taken in a directory by a live entry or by a link,
-- never both (the store checks, under the directory's lock).
CREATE TABLE links (
    parent_id INTEGER NOT NULL REFERENCES entries(id),
    name      TEXT    NOT NULL,
    entry_id  INTEGER NOT NULL REFERENCES entries(id),
    PRIMARY KEY (parent_id, name)
);
CREATE INDEX links_entry ON links(entry_id);
-- A directory's link count is 2 + its subdirectories.
CREATE INDEX entries_subdirs ON entries(parent_id) WHERE kind = 1 AND deleted_at IS NULL;
