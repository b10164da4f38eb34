-- A storage node's failure domain: replicas of a chunk go to distinct
-- zones whenever there are enough of them.
ALTER TABLE storage_nodes ADD COLUMN zone TEXT NOT NULL DEFAULT '';
