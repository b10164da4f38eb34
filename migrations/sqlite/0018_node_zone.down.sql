ALTER TABLE storage_nodes DROP COLUMN zone;
