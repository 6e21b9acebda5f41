-- The search vector stored next to the terms, so a scan in id order (what
-- the planner picks for common words: newest first, stop at the page's end)
-- tests each row without re-running to_tsvector. Measured on 1,000,000
-- tweets: 148 ms -> see docs/BENCHMARKS.md for the query it fixed.
ALTER TABLE tweets ADD COLUMN search_vector tsvector
    GENERATED ALWAYS AS (to_tsvector('simple', search_terms)) STORED;
DROP INDEX tweets_search;
CREATE INDEX tweets_search ON tweets USING gin (search_vector);
