DROP TABLE sign_in_challenges;
DROP TABLE recovery_codes;
DROP TABLE totp_factors;
ALTER TABLE sessions DROP COLUMN amr;
DROP INDEX users_mfa_enabled_idx;
ALTER TABLE users DROP COLUMN mfa_enabled;
