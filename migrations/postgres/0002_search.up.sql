-- Full-text search over names and MIME types: trigram indexes (pg_trgm) so
-- that substring matches (ILIKE '%word%') use an index, and a tsvector of
-- the words of the name and type for whole-word matches.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX entries_name_trgm ON entries USING gin (name gin_trgm_ops);
CREATE INDEX entries_mime_trgm ON entries USING gin (mime gin_trgm_ops);
ALTER TABLE entries ADD COLUMN search tsvector
    GENERATED ALWAYS AS (to_tsvector('simple', translate(name, '._-/', '    ') || ' ' || translate(mime, '/+', '  '))) STORED;
CREATE INDEX entries_search ON entries USING gin (search);
