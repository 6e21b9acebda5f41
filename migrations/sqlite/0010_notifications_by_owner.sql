-- Notifications stored in their owner's order: the table is keyed by
-- (owner_id, id) instead of by id with a second index on (owner_id, id), and
-- the one-per-(owner, tweet, actor, kind) key leads with the tweet after the
-- owner, so it also finds a deleted tweet's notifications (the owner of a
-- like's notification is always the tweet's author). That drops two indexes
-- a new notification had to enter at a random place (`notifications_owner`
-- and `notifications_tweet`): a like on SQLite writes fewer pages.
--
-- Without an index on tweet_id alone, ON DELETE CASCADE would scan the whole
-- table for every deleted tweet, so the reference to tweets goes and
-- `delete_tweet` removes the notifications itself, in the same transaction;
-- a notification for a tweet already gone is never inserted (the insert
-- checks that the tweet exists, on the one writer connection).
CREATE TABLE notifications_by_owner (
    owner_id    INTEGER NOT NULL REFERENCES users (id),
    id          INTEGER NOT NULL,
    actor_id    INTEGER NOT NULL REFERENCES users (id),
    tweet_id    INTEGER NOT NULL,
    kind        TEXT    NOT NULL,
    event_id    INTEGER NOT NULL,
    read        INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (owner_id, id),
    UNIQUE (owner_id, tweet_id, actor_id, kind)
) STRICT, WITHOUT ROWID;

INSERT INTO notifications_by_owner (owner_id, id, actor_id, tweet_id, kind, event_id, read, created_at)
SELECT owner_id, id, actor_id, tweet_id, kind, event_id, read, created_at FROM notifications;

DROP TABLE notifications;
ALTER TABLE notifications_by_owner RENAME TO notifications;

CREATE INDEX notifications_owner_unread ON notifications (owner_id, id) WHERE read = 0;
