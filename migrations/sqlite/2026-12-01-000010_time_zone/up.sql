-- The zone each person reads times in (an IANA name; pages show times in it).
ALTER TABLE users ADD COLUMN time_zone TEXT NOT NULL DEFAULT 'UTC';

-- Start-up fills in values that older rows lack; these (empty) indexes let it see at once that
-- none do, instead of reading every user.
CREATE INDEX users_search_text_missing ON users (id) WHERE search_text = '';
CREATE INDEX users_email_skeleton_missing ON users (id) WHERE email_skeleton IS NULL;
