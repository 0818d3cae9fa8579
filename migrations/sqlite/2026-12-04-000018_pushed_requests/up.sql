-- RFC 9126 Pushed Authorization Requests: an app that must push its authorization requests
-- (the redirect then carries only client_id and request_uri).
ALTER TABLE oauth_clients ADD COLUMN require_pushed_requests BOOLEAN NOT NULL DEFAULT 0;

-- Pushed requests: the parameters an app sent to /oauth2/par, under the SHA-256 of the random
-- part of their request_uri; short-lived, used once (when the code is issued).
CREATE TABLE oauth_pushed_requests (
    request_hash TEXT PRIMARY KEY NOT NULL,
    client_id BIGINT NOT NULL REFERENCES oauth_clients (id) ON DELETE CASCADE,
    params TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    used_at TIMESTAMP
);
CREATE INDEX oauth_pushed_requests_client_idx ON oauth_pushed_requests (client_id, expires_at);
CREATE INDEX oauth_pushed_requests_expires_idx ON oauth_pushed_requests (expires_at);
