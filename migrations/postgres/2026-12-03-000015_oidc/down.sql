DROP TABLE oauth_consents;
DROP TABLE oauth_refresh_tokens;
DROP TABLE oauth_codes;
DROP TABLE oauth_grants;
DROP TABLE oauth_clients;
DELETE FROM signing_keys WHERE purpose = 'id' OR alg = 'RS256';
ALTER TABLE signing_keys DROP COLUMN purpose;
ALTER TABLE signing_keys DROP CONSTRAINT signing_keys_alg_check;
ALTER TABLE signing_keys ADD CONSTRAINT signing_keys_alg_check CHECK (alg IN ('EdDSA', 'ES256', 'HS256'));
