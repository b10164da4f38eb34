-- Fences of the cluster-wide locks (the GC's): each taking of a lock draws
-- an epoch greater than every one before, kept here per lock; a write made
-- on behalf of a lock checks in its transaction that its epoch is still
-- the lock's latest, so that a holder that lost its lock without knowing
-- changes nothing.
CREATE TABLE locks (
    name  TEXT    PRIMARY KEY,
    epoch BIGINT NOT NULL
);
-- Which holding of the GC lock marked a chunk deleting, and when: only that
-- holder may finish the deletion, and another takes the mark over only once
-- it is old (its collector died or lost the lock).
ALTER TABLE chunks ADD COLUMN deleting_fence BIGINT NOT NULL DEFAULT 0;
ALTER TABLE chunks ADD COLUMN deleting_since BIGINT NOT NULL DEFAULT 0;
