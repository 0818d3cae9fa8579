-- RFC 7591 Dynamic Client Registration: how an app came to be ('' an admin or the command
-- line added it; 'dynamic' it registered itself with an initial access token; 'waiting' it
-- registered itself without one and waits, disabled, for an admin's approval).
ALTER TABLE oauth_clients ADD COLUMN registration TEXT NOT NULL DEFAULT '';

-- Initial access tokens an admin issues for registrations: only the SHA-256 is kept.
CREATE TABLE oauth_registration_tokens (
    token_hash TEXT PRIMARY KEY NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    uses_left INTEGER NOT NULL,
    made_by TEXT NOT NULL
);
CREATE INDEX oauth_registration_tokens_expires_idx ON oauth_registration_tokens (expires_at);

-- RFC 8707 resource indicators: the resource an app asked a token for (its audience).
ALTER TABLE oauth_codes ADD COLUMN resource TEXT;
ALTER TABLE oauth_grants ADD COLUMN resource TEXT;
