-- A gifv's MP4 is rendered after the tweet is answered. The work is recorded
-- by the insert of the media row itself (a trigger, so in the same
-- transaction as the tweet, whichever code path writes it): a crash between
-- the answer and the rendition leaves the row here, and a worker of any node
-- takes it up again. Deleting the media row (or its tweet) drops the work.

CREATE TABLE media_renditions (
    media_id       INTEGER PRIMARY KEY REFERENCES media (id) ON DELETE CASCADE,
    claimed_until  INTEGER NOT NULL DEFAULT 0     -- ms since the epoch: a worker's lease on the job
) STRICT;

CREATE TRIGGER media_rendition_due AFTER INSERT ON media WHEN NEW.kind = 'gifv'
BEGIN
    INSERT INTO media_renditions (media_id) VALUES (NEW.id);
END;
