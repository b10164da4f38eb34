-- Who made a change: the opaque origin a client sends with its requests
-- (a mount's session), empty when unknown. A mount follows the change
-- feed and skips the changes it made itself by this column.
ALTER TABLE changes ADD COLUMN origin TEXT NOT NULL DEFAULT '';
