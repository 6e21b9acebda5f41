-- The tweets' full-text index moves to a file of its own beside this one
-- (chirp.search.db), written by an indexer beside the write batches rather
-- than inside them: see src/ports/store/sqlite/search_index.rs. The indexer
-- builds the new file from tweets.search_terms when it finds none.
DROP TRIGGER tweets_search_insert;
DROP TRIGGER tweets_search_delete;
DROP TABLE tweet_search;
