-- RFC 8628 Device Authorization Grant: a device without a browser asks for a code, a person
-- enters its user code at /device and allows it, the device polls the token endpoint.
-- The device code is kept only as its SHA-256; the user code (8 letters, normalised) is unique
-- among the codes that have not expired.
CREATE TABLE oauth_device_codes (
    device_hash TEXT PRIMARY KEY NOT NULL,
    user_code TEXT NOT NULL,
    client_id BIGINT NOT NULL REFERENCES oauth_clients (id) ON DELETE CASCADE,
    scope TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    -- How often the device may poll (seconds; raised when it polls too fast).
    poll_interval INTEGER NOT NULL,
    last_polled_at TIMESTAMP,
    -- pending, allowed, denied or used.
    state TEXT NOT NULL,
    -- Who allowed it, from which session, and what they had proved.
    user_id BIGINT REFERENCES users (id) ON DELETE CASCADE,
    session_sid TEXT,
    auth_time TIMESTAMP,
    amr TEXT
);
CREATE UNIQUE INDEX oauth_device_codes_user_code_idx ON oauth_device_codes (user_code);
CREATE INDEX oauth_device_codes_client_idx ON oauth_device_codes (client_id, expires_at);
CREATE INDEX oauth_device_codes_expires_idx ON oauth_device_codes (expires_at);
