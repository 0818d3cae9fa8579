-- One row per signed-in device: created at login, renewed by its refresh token, deleted when
-- it ends (logout, revocation) or is pruned after expiry.
CREATE TABLE sessions (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    -- The `sid` claim of every access token of this session; never shown in URLs.
    sid TEXT NOT NULL,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TIMESTAMP NOT NULL,
    last_used_at TIMESTAMP NOT NULL,
    -- Absolute end: created_at + the configured lifetime.
    expires_at TIMESTAMP NOT NULL,
    client_ip TEXT NOT NULL,
    user_agent TEXT NOT NULL,
    via TEXT NOT NULL
);
CREATE UNIQUE INDEX sessions_sid_key ON sessions (sid);
CREATE INDEX sessions_user_idx ON sessions (user_id, id);
CREATE INDEX sessions_expires_idx ON sessions (expires_at);

-- Refresh tokens, stored as SHA-256 hashes. Retired ones are kept while their session lives,
-- so that presenting one again is recognised as reuse.
CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY NOT NULL,
    session_id BIGINT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    issued_at TIMESTAMP NOT NULL,
    retired_at TIMESTAMP
);
CREATE INDEX refresh_tokens_session_idx ON refresh_tokens (session_id);

-- Sessions ended before their access tokens expired. Every instance polls this table and
-- refuses those tokens; rows are pruned once no such token can still be valid.
CREATE TABLE revoked_sessions (
    sid TEXT PRIMARY KEY NOT NULL,
    revoked_at TIMESTAMP NOT NULL
);
CREATE INDEX revoked_sessions_revoked_idx ON revoked_sessions (revoked_at);
