-- Older releases know no history links: a replaced file whose history
-- one continued goes to the trash with all its versions, restorable.
UPDATE entries SET trash_root = id
    WHERE id IN (SELECT hist_prev FROM entries WHERE hist_prev IS NOT NULL) AND trash_root IS NULL;
DROP INDEX entries_hist_prev;
ALTER TABLE entries DROP COLUMN hist_base;
ALTER TABLE entries DROP COLUMN hist_prev;
