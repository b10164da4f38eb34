-- Special files: FIFOs, sockets and character and block devices are
-- entries of kinds 4 to 7, with no content; rdev is a device's number as
-- the kernel encodes it (0 for the others). Entries keep an access time
-- (atime_ns), the modification time until set.
ALTER TABLE entries DROP CONSTRAINT entries_kind_check;
ALTER TABLE entries ADD CONSTRAINT entries_kind_check CHECK (kind BETWEEN 1 AND 7);
ALTER TABLE entries ADD COLUMN rdev BIGINT NOT NULL DEFAULT 0;
ALTER TABLE entries ADD COLUMN atime_ns BIGINT NOT NULL DEFAULT 0;
UPDATE entries SET atime_ns = mtime_ns;
