DROP TABLE audit_events;
DROP INDEX users_last_login_idx;
DROP INDEX users_created_idx;
DROP INDEX users_search_name_idx;
ALTER TABLE users DROP COLUMN search_name;
