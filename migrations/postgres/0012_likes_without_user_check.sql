-- A like's user is the signed-in caller: a token is only ever issued to a
-- user the database holds, and users are never deleted. The foreign key
-- only repeated that, a `users` row locked (FOR KEY SHARE) a like, about 4%
-- of the database's time in a like (pg_stat_statements, docs/BENCHMARKS.md).
ALTER TABLE likes DROP CONSTRAINT likes_user_id_fkey;
