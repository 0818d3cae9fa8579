-- 000009 and 000010 were edited after installations had run them (the trigram sample, and the
-- indexes of rows missing derived values). An installation that ran their first text lacks
-- what was added; this brings it to the same schema, and changes nothing where it is there.
-- (Released migrations are never edited again: .ci/check-migrations holds their checksums.)
CREATE TABLE IF NOT EXISTS search_trigram_sample (
    trigram TEXT PRIMARY KEY NOT NULL,
    users BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS users_search_text_missing ON users (id) WHERE search_text = '';
CREATE INDEX IF NOT EXISTS users_email_skeleton_missing ON users (id) WHERE email_skeleton IS NULL;
