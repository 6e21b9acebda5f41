-- An account whose tweets the fan-out skipped (it had too many followers)
-- is merged into its followers' timelines at read time for good: those
-- tweets were never pushed, so it must stay merged even if it later falls
-- back under the threshold.
ALTER TABLE users ADD COLUMN merged_at_read INTEGER NOT NULL DEFAULT 0;
