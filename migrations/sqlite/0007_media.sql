-- Media as people post it: gifv (an animated image served as a looping MP4,
-- its original kept), alt text, a BlurHash placeholder and the thumbnail's
-- size. SQLite cannot change a CHECK constraint in place, so the table is
-- rebuilt with the new kind allowed; nothing refers to media rows.

CREATE TABLE media_new (
    id                INTEGER PRIMARY KEY,
    tweet_id          INTEGER NOT NULL REFERENCES tweets (id) ON DELETE CASCADE,
    position          INTEGER NOT NULL,          -- order of upload within the tweet
    kind              TEXT    NOT NULL CHECK (kind IN ('image', 'video', 'gifv')),
    content_type      TEXT    NOT NULL,
    storage_key       TEXT    NOT NULL,          -- key in the MediaStore, chosen by the server
    thumbnail_key     TEXT,                      -- an image's thumbnail or a video's poster (JPEG)
    size_bytes        INTEGER NOT NULL,
    width             INTEGER,
    height            INTEGER,
    duration_ms       INTEGER,
    original_key      TEXT,                      -- a gifv's original GIF or WebP
    thumbnail_width   INTEGER,
    thumbnail_height  INTEGER,
    description       TEXT,                      -- alt text, up to 1,500 characters
    blurhash          TEXT
) STRICT;

INSERT INTO media_new (id, tweet_id, position, kind, content_type, storage_key, thumbnail_key, size_bytes, width, height, duration_ms)
    SELECT id, tweet_id, position, kind, content_type, storage_key, thumbnail_key, size_bytes, width, height, duration_ms FROM media;

DROP TABLE media;
ALTER TABLE media_new RENAME TO media;
CREATE INDEX media_tweet_id ON media (tweet_id, position);
