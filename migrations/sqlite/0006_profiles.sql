-- Profiles: a short bio and an avatar. The avatar is a MediaStore key (a
-- 400x400 square made by the server); NULL when the user has none.
ALTER TABLE users ADD COLUMN bio TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN avatar_key TEXT;
