-- A version's identity is its row id, which never changes: a file that
-- takes over another's history (a rename over it) renumbers versions, and
-- every record that must keep naming one version (an open file's base, a
-- checksum computed later, a crash journal) names it by id.
ALTER TABLE entries ADD COLUMN cur_version_id BIGINT NOT NULL DEFAULT 0;
UPDATE entries SET cur_version_id = COALESCE(
    (SELECT v.id FROM versions v WHERE v.entry_id = entries.id AND v.number = entries.cur_version), 0)
    WHERE cur_version > 0;
-- base names the base version by id from now on.
UPDATE versions SET base = COALESCE(
    (SELECT b.id FROM versions b WHERE b.entry_id = versions.entry_id AND b.number = versions.base), 0)
    WHERE base > 0;
-- The commit id a client gave a commit: a retry with the same id (a lost
-- reply, a crash after the commit) finds this version instead of making
-- another.
ALTER TABLE versions ADD COLUMN commit_id TEXT;
CREATE UNIQUE INDEX versions_commit_id ON versions(created_by, commit_id) WHERE commit_id IS NOT NULL;
