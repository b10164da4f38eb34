DROP INDEX versions_commit_id;
ALTER TABLE versions DROP COLUMN commit_id;
UPDATE versions SET base = COALESCE(
    (SELECT b.number FROM versions b WHERE b.id = versions.base), 0)
    WHERE base > 0;
ALTER TABLE entries DROP COLUMN cur_version_id;
