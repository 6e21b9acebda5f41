-- A block-range index on tweet ids. Tweets are stored in the order they are
-- posted, so each range of table pages holds a narrow range of ids, and
-- this index (a few kilobytes for a million tweets) names the pages that
-- can hold the ids above a bound. A search for common-enough words asks
-- the full-text index for its matches among the newest tweets first: the
-- two indexes' bitmaps are intersected before any row is read, so the rows
-- read are the matches in that range, not every match in the table (see
-- ports/store/postgres/search.rs). Pages added since the last summary are
-- always included, so the newest tweets are never missed.
CREATE INDEX tweets_id_range ON tweets USING brin (id) WITH (autosummarize = on);
