-- A tweet's like and view counts move out of its row into a narrow table
-- of their own. Every like, unlike and view rewrote the whole tweet row
-- (about 570 bytes with its text and search vector): PostgreSQL copies a
-- row on update, recomputed the stored search vector, and, when the new
-- copy did not fit on the same page (most of the time on a table filled
-- by inserts), added it to all three indexes, the full-text one term by
-- term. 200 counter updates took 51 ms and 4,400 WAL records that way, and
-- 1 ms on a table of counts alone (docs/BENCHMARKS.md). The counts table
-- keeps room on each page, so that an update stays on its page and touches
-- no index. Its rows come and go with their tweet's.
CREATE TABLE tweet_counts (
    tweet_id   BIGINT PRIMARY KEY REFERENCES tweets (id) ON DELETE CASCADE,
    like_count BIGINT NOT NULL DEFAULT 0,
    view_count BIGINT NOT NULL DEFAULT 0
) WITH (fillfactor = 70);

INSERT INTO tweet_counts (tweet_id, like_count, view_count)
SELECT id, like_count, view_count FROM tweets;

ALTER TABLE tweets DROP COLUMN like_count, DROP COLUMN view_count;
