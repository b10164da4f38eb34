-- Nothing to change: this number is SQLite's chunks table moving to rows
-- in write order. A PostgreSQL table keeps its rows in write order already,
-- with the hash's index beside them.
SELECT 1;
