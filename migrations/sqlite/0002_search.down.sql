DROP TRIGGER entries_fts_update;
DROP TRIGGER entries_fts_delete;
DROP TRIGGER entries_fts_insert;
DROP TABLE entries_fts;
