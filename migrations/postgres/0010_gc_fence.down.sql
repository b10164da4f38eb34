ALTER TABLE chunks DROP COLUMN deleting_since;
ALTER TABLE chunks DROP COLUMN deleting_fence;
DROP TABLE locks;
