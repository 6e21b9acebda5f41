-- Tweets, their media, follows and likes. Counters on users and tweets are
-- changed in the same transaction as the rows they count, so they are exact.

CREATE TABLE tweets (
    id          INTEGER PRIMARY KEY,            -- time-ordered: newest first is ORDER BY id DESC
    author_id   INTEGER NOT NULL REFERENCES users (id),
    content     TEXT    NOT NULL,
    like_count  INTEGER NOT NULL DEFAULT 0,
    view_count  INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL
) STRICT;

-- A user's tweets, newest first; also the home timeline's fan-out on read.
CREATE INDEX tweets_author_id_id ON tweets (author_id, id);

CREATE TABLE media (
    id             INTEGER PRIMARY KEY,
    tweet_id       INTEGER NOT NULL REFERENCES tweets (id) ON DELETE CASCADE,
    position       INTEGER NOT NULL,            -- order of upload within the tweet
    kind           TEXT    NOT NULL CHECK (kind IN ('image', 'video')),
    content_type   TEXT    NOT NULL,
    storage_key    TEXT    NOT NULL,            -- key in the MediaStore, chosen by the server
    thumbnail_key  TEXT,
    size_bytes     INTEGER NOT NULL,
    width          INTEGER,
    height         INTEGER,
    duration_ms    INTEGER
) STRICT;

CREATE INDEX media_tweet_id ON media (tweet_id, position);

CREATE TABLE follows (
    follower_id  INTEGER NOT NULL REFERENCES users (id),
    followee_id  INTEGER NOT NULL REFERENCES users (id),
    id           INTEGER NOT NULL,               -- time-ordered: the key of "newest follow first" pages
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (follower_id, followee_id),
    CHECK (follower_id <> followee_id)
) STRICT, WITHOUT ROWID;

CREATE INDEX follows_followee ON follows (followee_id, id);
CREATE INDEX follows_follower ON follows (follower_id, id);

CREATE TABLE likes (
    tweet_id    INTEGER NOT NULL REFERENCES tweets (id) ON DELETE CASCADE,
    user_id     INTEGER NOT NULL REFERENCES users (id),
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (tweet_id, user_id)              -- one like per user and tweet
) STRICT, WITHOUT ROWID;

CREATE INDEX likes_user ON likes (user_id, tweet_id);
