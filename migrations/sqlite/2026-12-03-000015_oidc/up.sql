-- Signing keys get a purpose: `access` (our access tokens, as before) or `id` (ID tokens for
-- the apps, one key per algorithm an app may ask for, RS256 included). SQLite cannot change a
-- CHECK constraint in place: the table is rebuilt with the same rows.
CREATE TABLE signing_keys_with_purpose (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    kid TEXT NOT NULL UNIQUE,
    alg TEXT NOT NULL CHECK (alg IN ('EdDSA', 'ES256', 'HS256', 'RS256')),
    sealed_private_key TEXT,
    public_key TEXT,
    published_at TIMESTAMP NOT NULL,
    signs_from TIMESTAMP NOT NULL,
    retired_at TIMESTAMP,
    drop_after TIMESTAMP,
    purpose TEXT NOT NULL DEFAULT 'access' CHECK (purpose IN ('access', 'id'))
);
INSERT INTO signing_keys_with_purpose
    (id, kid, alg, sealed_private_key, public_key, published_at, signs_from, retired_at, drop_after, purpose)
    SELECT id, kid, alg, sealed_private_key, public_key, published_at, signs_from, retired_at, drop_after, 'access'
    FROM signing_keys;
DROP TABLE signing_keys;
ALTER TABLE signing_keys_with_purpose RENAME TO signing_keys;

-- Apps that sign their users in through Portcullis (OpenID Connect relying parties, OAuth
-- clients). `client_id` is public and random; `secret_hash` is the SHA-256 of a 256-bit secret
-- (NULL for a public client). Lists are stored as text: redirect URIs one per line, scopes,
-- roles and groups separated by spaces (empty: anyone may use the app).
CREATE TABLE oauth_clients (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    client_id TEXT NOT NULL,
    name TEXT NOT NULL,
    secret_hash TEXT,
    redirect_uris TEXT NOT NULL,
    scopes TEXT NOT NULL,
    ask_consent BOOLEAN NOT NULL,
    allowed_roles TEXT NOT NULL DEFAULT '',
    allowed_groups TEXT NOT NULL DEFAULT '',
    id_token_alg TEXT NOT NULL CHECK (id_token_alg IN ('RS256', 'EdDSA', 'ES256')),
    access_token_seconds BIGINT NOT NULL,
    refresh_token_seconds BIGINT NOT NULL,
    is_enabled BOOLEAN NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX oauth_clients_client_id_key ON oauth_clients (client_id);

-- One authorization: the tokens a code (or a client acting as itself) led to. Revoking it
-- puts `gid` on the revoked list, so every access token of it is refused within a second.
-- `session_id` is the Portcullis session it came from (NULL for client_credentials): when
-- that session ends, so do the grant's refresh tokens.
CREATE TABLE oauth_grants (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    gid TEXT NOT NULL,
    client_id BIGINT NOT NULL REFERENCES oauth_clients (id) ON DELETE CASCADE,
    user_id BIGINT REFERENCES users (id) ON DELETE CASCADE,
    session_sid TEXT,
    scope TEXT NOT NULL,
    auth_time TIMESTAMP NOT NULL,
    amr TEXT NOT NULL,
    nonce TEXT,
    created_at TIMESTAMP NOT NULL,
    last_used_at TIMESTAMP NOT NULL,
    revoked_at TIMESTAMP
);
CREATE UNIQUE INDEX oauth_grants_gid_key ON oauth_grants (gid);
CREATE INDEX oauth_grants_user_idx ON oauth_grants (user_id, client_id);
CREATE INDEX oauth_grants_session_idx ON oauth_grants (session_sid);
CREATE INDEX oauth_grants_client_idx ON oauth_grants (client_id);

-- Authorization codes: stored hashed, single use, short-lived. A used code keeps the grant
-- it led to, so a second use can revoke everything issued from it.
CREATE TABLE oauth_codes (
    code_hash TEXT PRIMARY KEY NOT NULL,
    client_id BIGINT NOT NULL REFERENCES oauth_clients (id) ON DELETE CASCADE,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    session_sid TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    scope TEXT NOT NULL,
    nonce TEXT,
    code_challenge TEXT,
    auth_time TIMESTAMP NOT NULL,
    amr TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    used_at TIMESTAMP,
    grant_id BIGINT
);
CREATE INDEX oauth_codes_expires_idx ON oauth_codes (expires_at);

-- Refresh tokens of a grant, rotated at each use; a retired one coming back revokes the grant.
CREATE TABLE oauth_refresh_tokens (
    token_hash TEXT PRIMARY KEY NOT NULL,
    grant_id BIGINT NOT NULL REFERENCES oauth_grants (id) ON DELETE CASCADE,
    issued_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    retired_at TIMESTAMP
);
CREATE INDEX oauth_refresh_tokens_grant_idx ON oauth_refresh_tokens (grant_id);

-- What a user let an app learn (the scopes), and when the app last used it: the connected
-- apps on the account page. Deleting it ("disconnect") revokes the user's grants of the app.
CREATE TABLE oauth_consents (
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id BIGINT NOT NULL REFERENCES oauth_clients (id) ON DELETE CASCADE,
    scopes TEXT NOT NULL,
    granted_at TIMESTAMP NOT NULL,
    last_used_at TIMESTAMP NOT NULL,
    PRIMARY KEY (user_id, client_id)
);
CREATE INDEX oauth_consents_client_idx ON oauth_consents (client_id);
