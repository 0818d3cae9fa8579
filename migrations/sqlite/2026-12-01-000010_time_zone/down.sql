DROP INDEX users_email_skeleton_missing;
DROP INDEX users_search_text_missing;
ALTER TABLE users DROP COLUMN time_zone;
