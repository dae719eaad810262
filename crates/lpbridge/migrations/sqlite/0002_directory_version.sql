-- Bumped by every directory write made through lpbridge, so that each replica's cached
-- directory snapshot for the connection is dropped on its next request (cross-replica
-- invalidation at the cost of the connection read every request already makes).
ALTER TABLE connections ADD COLUMN directory_version INTEGER NOT NULL DEFAULT 0;
