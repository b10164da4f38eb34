DROP INDEX entries_search;
ALTER TABLE entries DROP COLUMN search;
DROP INDEX entries_mime_trgm;
DROP INDEX entries_name_trgm;
