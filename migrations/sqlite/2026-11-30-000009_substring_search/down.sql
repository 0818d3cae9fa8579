DROP TRIGGER users_fts_update;
DROP TRIGGER users_fts_delete;
DROP TRIGGER users_fts_insert;
DROP TABLE search_trigram_sample;
DROP TABLE users_fts;
ALTER TABLE users DROP COLUMN search_text;
