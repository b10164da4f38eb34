ALTER TABLE entries DROP COLUMN data_size;
