-- Substring search in the admin's user list: username, e-mail and display name folded to
-- lower case without accents (filled in by the application), indexed by trigrams (pg_trgm,
-- a trusted extension: the database owner may create it).
CREATE EXTENSION IF NOT EXISTS pg_trgm;
ALTER TABLE users ADD COLUMN search_text TEXT NOT NULL DEFAULT '';
CREATE INDEX users_search_text_trgm ON users USING gin (search_text gin_trgm_ops);

-- How many users hold each trigram, estimated from a sample of users (refreshed hourly by
-- housekeeping): a search queries the index with its rarest trigrams only (GIN reads whole
-- posting lists, and a trigram everyone holds costs milliseconds).
CREATE TABLE search_trigram_sample (
    trigram TEXT PRIMARY KEY NOT NULL,
    users BIGINT NOT NULL
);
