-- Substring search in the admin's user list: username, e-mail and display name folded to
-- lower case without accents (filled in by the application), indexed by trigrams in FTS5.
ALTER TABLE users ADD COLUMN search_text TEXT NOT NULL DEFAULT '';
CREATE VIRTUAL TABLE users_fts USING fts5(search_text, content='users', content_rowid='id', tokenize='trigram');
CREATE TRIGGER users_fts_insert AFTER INSERT ON users BEGIN
    INSERT INTO users_fts (rowid, search_text) VALUES (new.id, new.search_text);
END;
CREATE TRIGGER users_fts_delete AFTER DELETE ON users BEGIN
    INSERT INTO users_fts (users_fts, rowid, search_text) VALUES ('delete', old.id, old.search_text);
END;
CREATE TRIGGER users_fts_update AFTER UPDATE OF search_text ON users BEGIN
    INSERT INTO users_fts (users_fts, rowid, search_text) VALUES ('delete', old.id, old.search_text);
    INSERT INTO users_fts (rowid, search_text) VALUES (new.id, new.search_text);
END;

-- How many users hold each trigram, estimated from a sample of users (refreshed hourly by
-- housekeeping): a search asks the index for its rarest trigrams only.
CREATE TABLE search_trigram_sample (
    trigram TEXT PRIMARY KEY NOT NULL,
    users BIGINT NOT NULL
);
