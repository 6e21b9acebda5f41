-- Search. The service cuts text into terms (letters and digits of any
-- script, accents removed, case folded, in-word apostrophes dropped: see
-- src/domain/search.rs) and stores them in tweets.search_terms; the
-- full-text index covers those terms with the `simple` configuration (no
-- stemming, so no language is stemmed away), matching SQLite's results.
ALTER TABLE tweets ADD COLUMN search_terms TEXT NOT NULL DEFAULT '';
CREATE INDEX tweets_search ON tweets USING gin (to_tsvector('simple', search_terms));

-- Trigram index for "username contains", ignoring case.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX users_username_trgm ON users USING gin (lower(username) gin_trgm_ops);
