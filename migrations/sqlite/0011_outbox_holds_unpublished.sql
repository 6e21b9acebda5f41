-- The outbox holds only events still to be published: the relay deletes a
-- row once the broker has acknowledged it, instead of setting published_at
-- and pruning a day later. A like's event so costs one index entry fewer on
-- insert and no new row version on publishing, and the relay's reads step
-- over a day of published rows no more.
DELETE FROM outbox WHERE published_at IS NOT NULL;
DROP INDEX outbox_unpublished;
ALTER TABLE outbox DROP COLUMN published_at;
