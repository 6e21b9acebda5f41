-- An account's followers are read by the index alone. The fan-out reads
-- every follower of a tweet's author, and the followers listing pages
-- through them; follows are stored as they were made, so each follower's
-- row sat on a page of its own, and fanning out one tweet of an account
-- with 7,600 followers read 7,200 pages (60 ms). The index now carries the
-- follower too.
CREATE INDEX follows_followee_with_follower ON follows (followee_id, id) INCLUDE (follower_id);
DROP INDEX follows_followee;
ALTER INDEX follows_followee_with_follower RENAME TO follows_followee;
