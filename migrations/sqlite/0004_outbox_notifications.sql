-- Like events leave through a transactional outbox: the like, its counter and
-- the outbox row commit together; a relay publishes rows in id order and
-- marks them only after the broker acknowledged them.
CREATE TABLE outbox (
    id            INTEGER PRIMARY KEY,           -- time-ordered; also the event id
    kind          TEXT    NOT NULL,              -- e.g. 'tweet_liked'; the relay maps it to a topic
    key           TEXT    NOT NULL,              -- message key: the user to notify
    payload       TEXT    NOT NULL,              -- JSON with event_id and schema_version
    created_at    INTEGER NOT NULL,
    published_at  INTEGER
) STRICT;

CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;

-- Leases elect one worker among several chirp processes (the outbox relay).
CREATE TABLE leases (
    name        TEXT    PRIMARY KEY,
    holder      TEXT    NOT NULL,
    expires_at  INTEGER NOT NULL
) STRICT;

-- One notification per (owner, actor, tweet, kind): a like, unlike and like
-- again, or the same event delivered twice, notify once.
CREATE TABLE notifications (
    id          INTEGER PRIMARY KEY,
    owner_id    INTEGER NOT NULL REFERENCES users (id),
    actor_id    INTEGER NOT NULL REFERENCES users (id),
    tweet_id    INTEGER NOT NULL REFERENCES tweets (id) ON DELETE CASCADE,
    kind        TEXT    NOT NULL,
    event_id    INTEGER NOT NULL,
    read        INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL,
    UNIQUE (owner_id, actor_id, tweet_id, kind)
) STRICT;

CREATE INDEX notifications_owner ON notifications (owner_id, id);
CREATE INDEX notifications_owner_unread ON notifications (owner_id, id) WHERE read = 0;
CREATE INDEX notifications_tweet ON notifications (tweet_id);
