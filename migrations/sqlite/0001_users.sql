-- Accounts. A row exists only after a verified registration.
-- Times are milliseconds since the Unix epoch; ids are time-ordered 64-bit.
CREATE TABLE users (
    id               INTEGER PRIMARY KEY,
    username         TEXT    NOT NULL,
    email            TEXT    NOT NULL,
    -- The email as compared: lower-cased by the service (Unicode-aware, the
    -- same on both databases).
    email_key        TEXT    NOT NULL,
    name             TEXT    NOT NULL,
    password_hash    TEXT    NOT NULL,
    created_at       INTEGER NOT NULL,
    -- Kept exact by the same transactions that change follows and tweets.
    followers_count  INTEGER NOT NULL DEFAULT 0,
    followings_count INTEGER NOT NULL DEFAULT 0,
    tweets_count     INTEGER NOT NULL DEFAULT 0
) STRICT;

-- Uniqueness ignoring case decides registration races: the loser gets 409.
-- Usernames are ASCII, so lower() is exact on both databases.
CREATE UNIQUE INDEX users_username_key ON users (lower(username));
CREATE UNIQUE INDEX users_email_key ON users (email_key);
