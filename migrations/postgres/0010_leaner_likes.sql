-- A like writes fewer index entries and takes fewer row locks (measured in
-- docs/BENCHMARKS.md, "Fewer rows, locks and index entries a like on
-- PostgreSQL"). pg_stat_statements showed the notification insert as the
-- costliest statement of a like: ten WAL records a notification, for five
-- indexes and three foreign-key checks, each of those a locked row.
--
-- Notifications are stored in their owner's order, as on SQLite since its
-- 0010: keyed by (owner_id, id), the one-per-(owner, tweet, actor, kind) key
-- leading with the tweet after the owner, so that it also finds a deleted
-- tweet's notifications (the owner of a like's notification is always the
-- tweet's author). That drops `notifications_owner` and `notifications_tweet`.
--
-- Their foreign keys go: the insert checks, and locks, the tweet itself
-- (`EXISTS ... FOR KEY SHARE`, as the foreign key did, so a tweet deleted
-- meanwhile waits for it or is not notified of), and `delete_tweet` removes
-- the notifications in its own transaction. Owner and actor are users a
-- tweet and a like already reference, and users are never deleted.
ALTER TABLE notifications
    DROP CONSTRAINT notifications_tweet_id_fkey,
    DROP CONSTRAINT notifications_owner_id_fkey,
    DROP CONSTRAINT notifications_actor_id_fkey,
    DROP CONSTRAINT notifications_owner_id_actor_id_tweet_id_kind_key,
    DROP CONSTRAINT notifications_pkey;
DROP INDEX notifications_owner;
DROP INDEX notifications_tweet;
ALTER TABLE notifications
    ADD PRIMARY KEY (owner_id, id),
    ADD UNIQUE (owner_id, tweet_id, actor_id, kind);

-- A like's tweet is locked and checked by the write batch before the like is
-- inserted (`FOR NO KEY UPDATE`, which a deletion waits for), so the
-- foreign key only repeated that check, a locked row a like; `delete_tweet`
-- removes the tweet's likes itself. The reference to the user stays.
ALTER TABLE likes DROP CONSTRAINT likes_tweet_id_fkey;
