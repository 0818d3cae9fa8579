DROP TABLE oauth_consents;
DROP TABLE oauth_refresh_tokens;
DROP TABLE oauth_codes;
DROP TABLE oauth_grants;
DROP TABLE oauth_clients;
DELETE FROM signing_keys WHERE purpose = 'id' OR alg = 'RS256';
ALTER TABLE signing_keys DROP COLUMN purpose;
