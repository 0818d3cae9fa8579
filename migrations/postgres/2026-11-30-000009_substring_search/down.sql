DROP TABLE search_trigram_sample;
DROP INDEX users_search_text_trgm;
ALTER TABLE users DROP COLUMN search_text;
