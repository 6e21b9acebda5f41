-- Accounts. A row exists only after a verified registration.
-- Times are milliseconds since the Unix epoch (the same on both databases);
-- ids are time-ordered 64-bit.
CREATE TABLE users (
    id               BIGINT PRIMARY KEY,
    username         TEXT   NOT NULL,
    email            TEXT   NOT NULL,
    -- The email as compared: lower-cased by the service (Unicode-aware, the
    -- same on both databases).
    email_key        TEXT   NOT NULL,
    name             TEXT   NOT NULL,
    password_hash    TEXT   NOT NULL,
    created_at       BIGINT NOT NULL,
    -- Kept exact by the same transactions that change follows and tweets.
    followers_count  BIGINT NOT NULL DEFAULT 0,
    followings_count BIGINT NOT NULL DEFAULT 0,
    tweets_count     BIGINT NOT NULL DEFAULT 0
);

-- Uniqueness ignoring case decides registration races: the loser gets 409.
CREATE UNIQUE INDEX users_username_key ON users (lower(username));
CREATE UNIQUE INDEX users_email_key ON users (email_key);
