DROP TABLE oauth_pushed_requests;
ALTER TABLE oauth_clients DROP COLUMN require_pushed_requests;
