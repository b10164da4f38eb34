-- Nothing to change: this number is SQLite's full-text index moving from
-- triggers to one update per transaction. PostgreSQL's trigram index is
-- maintained by PostgreSQL itself.
SELECT 1;
