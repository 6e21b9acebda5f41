-- The full-text index takes each new tweet's terms at once instead of
-- through GIN's pending list. With the list (`fastupdate`, PostgreSQL's
-- default), every search that uses the index also reads the whole list, up
-- to 4 MB, and whichever insert finds it full merges all of it into the
-- index before it commits: for the group commit that meant a write batch
-- stalled for up to 200 ms every few thousand tweets, and text tweets at
-- p99 43-46 ms instead of 19-20 (docs/BENCHMARKS.md). What is in the list
-- now goes into the index here.
ALTER INDEX tweets_search SET (fastupdate = off);
SELECT gin_clean_pending_list('tweets_search'::regclass);
