-- The quota counts every byte a user makes the server keep (see package
-- meta, "Quota"). held_bytes are the bytes kept for a user that no version
-- accounts for: the parts of its open multipart uploads, and the chunks it
-- stored that nothing referenced (chunk_holds, until until_ns or until a
-- commit of the user references them). used_bytes now counts the name and
-- value of each extended attribute too (xattrs.size).
ALTER TABLE users ADD COLUMN held_bytes BIGINT NOT NULL DEFAULT 0 CHECK (held_bytes >= 0);
CREATE TABLE chunk_holds (
    user_id  BIGINT NOT NULL REFERENCES users(id),
    hash     BYTEA  NOT NULL,
    size     BIGINT NOT NULL,
    until_ns BIGINT NOT NULL,
    PRIMARY KEY (user_id, hash)
);
CREATE INDEX chunk_holds_expiry ON chunk_holds(user_id, until_ns);
ALTER TABLE xattrs ADD COLUMN size BIGINT NOT NULL DEFAULT 0;
UPDATE xattrs SET size = octet_length(name) + octet_length(value);
UPDATE users SET
    used_bytes = used_bytes + (SELECT COALESCE(SUM(x.size), 0) FROM xattrs x JOIN entries e ON e.id = x.entry_id WHERE e.owner_id = users.id),
    held_bytes = (SELECT COALESCE(SUM(p.size), 0) FROM multipart_parts p JOIN multipart_uploads u ON u.id = p.upload_id WHERE u.owner_id = users.id);
-- A multipart upload lives at most until deadline_ns, however busy (a
-- week for the uploads already open); open uploads are counted per owner.
ALTER TABLE multipart_uploads ADD COLUMN deadline_ns BIGINT NOT NULL DEFAULT 0;
UPDATE multipart_uploads SET deadline_ns = GREATEST(expires_at, created_at + 604800000000000);
CREATE INDEX multipart_uploads_owner ON multipart_uploads(owner_id, expires_at);
