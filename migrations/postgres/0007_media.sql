-- Media as people post it: gifv (an animated image served as a looping MP4,
-- its original kept), alt text, a BlurHash placeholder and the thumbnail's size.

ALTER TABLE media DROP CONSTRAINT media_kind_check;
ALTER TABLE media ADD CONSTRAINT media_kind_check CHECK (kind IN ('image', 'video', 'gifv'));

ALTER TABLE media
    ADD COLUMN original_key      TEXT,      -- a gifv's original GIF or WebP
    ADD COLUMN thumbnail_width   BIGINT,
    ADD COLUMN thumbnail_height  BIGINT,
    ADD COLUMN description       TEXT,      -- alt text, up to 1,500 characters
    ADD COLUMN blurhash          TEXT;
