-- Passkeys (WebAuthn credentials): a second factor, and sign-in without a password.
CREATE TABLE passkeys (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- The credential id, base64url: how an assertion names its passkey.
    credential_id TEXT NOT NULL,
    -- The WebAuthn user handle (a random UUID, the same for all of a user's passkeys).
    user_handle TEXT NOT NULL,
    name TEXT NOT NULL,
    -- The public key and signature counter, as webauthn-rs keeps them (JSON). Nothing secret.
    passkey TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    last_used_at TIMESTAMP
);
CREATE UNIQUE INDEX passkeys_credential_key ON passkeys (credential_id);
CREATE INDEX passkeys_user_idx ON passkeys (user_id, id);

-- A ceremony's state travels sealed in the token its page holds (nothing is stored for
-- ceremonies that are started and abandoned); a completed one is remembered here until it
-- expires, so no ceremony completes twice.
CREATE TABLE passkey_ceremonies_used (
    token_hash TEXT PRIMARY KEY NOT NULL,
    expires_at TIMESTAMP NOT NULL
);
CREATE INDEX passkey_ceremonies_used_expires_idx ON passkey_ceremonies_used (expires_at);
