-- Search. The service cuts text into terms (letters and digits of any
-- script, accents removed, case folded, in-word apostrophes dropped: see
-- src/domain/search.rs) and stores them in tweets.search_terms; the full-text
-- index covers those terms only, so both databases match the same way.
ALTER TABLE tweets ADD COLUMN search_terms TEXT NOT NULL DEFAULT '';

-- FTS5 over tweets.search_terms, kept in sync by triggers.
CREATE VIRTUAL TABLE tweet_search USING fts5(
    search_terms, content = 'tweets', content_rowid = 'id', tokenize = 'unicode61 remove_diacritics 0'
);
CREATE TRIGGER tweets_search_insert AFTER INSERT ON tweets BEGIN
    INSERT INTO tweet_search (rowid, search_terms) VALUES (new.id, new.search_terms);
END;
CREATE TRIGGER tweets_search_delete AFTER DELETE ON tweets BEGIN
    INSERT INTO tweet_search (tweet_search, rowid, search_terms) VALUES ('delete', old.id, old.search_terms);
END;

-- Trigram index for "username contains", ignoring case (3 characters or more use it).
CREATE VIRTUAL TABLE user_search USING fts5(username, content = 'users', content_rowid = 'id', tokenize = 'trigram');
CREATE TRIGGER users_search_insert AFTER INSERT ON users BEGIN
    INSERT INTO user_search (rowid, username) VALUES (new.id, new.username);
END;
INSERT INTO user_search (user_search) VALUES ('rebuild');

-- Accounts listed newest first.
CREATE INDEX users_id_desc ON users (id DESC);
