ALTER TABLE oauth_grants DROP COLUMN resource;
ALTER TABLE oauth_codes DROP COLUMN resource;
DROP TABLE oauth_registration_tokens;
ALTER TABLE oauth_clients DROP COLUMN registration;
