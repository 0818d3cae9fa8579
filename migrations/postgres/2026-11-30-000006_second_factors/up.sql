-- Second factors (authenticator apps and recovery codes) and the state between the two steps
-- of a sign-in.

-- Whether the user has a second factor they can sign in with; kept in the same transaction as
-- every change to their factors, so tokens, lists and filters need no join.
ALTER TABLE users ADD COLUMN mfa_enabled BOOLEAN NOT NULL DEFAULT false;
CREATE INDEX users_mfa_enabled_idx ON users (mfa_enabled, username);

-- How the session's user proved who they are (RFC 8176 `amr` values, space-separated).
ALTER TABLE sessions ADD COLUMN amr TEXT NOT NULL DEFAULT 'pwd';

-- One authenticator app per user. The secret is sealed (AES-256-GCM under a key derived from
-- the signing secret, bound to the user id): a copy of the database alone does not give it.
-- `confirmed_at` is NULL while enrolment waits for its first code. `last_used_step` is the
-- 30-second step of the last accepted code; a code is accepted only for a later step, with a
-- compare-and-set, so no code works twice on any instance.
CREATE TABLE totp_factors (
    user_id BIGINT PRIMARY KEY NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    sealed_secret TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    confirmed_at TIMESTAMP,
    last_used_step BIGINT NOT NULL DEFAULT 0
);

-- Single-use recovery codes, stored only as SHA-256 hashes (each code carries 80 random bits).
CREATE TABLE recovery_codes (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash TEXT COLLATE "C" NOT NULL,
    used_at TIMESTAMP
);
CREATE UNIQUE INDEX recovery_codes_user_hash_key ON recovery_codes (user_id, code_hash);

-- A sign-in whose password was right and whose second step is pending: found by the SHA-256
-- of a token only its browser (cookie) or API client holds; deleted when used, abandoned or
-- expired.
CREATE TABLE sign_in_challenges (
    token_hash TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    failures INTEGER NOT NULL DEFAULT 0,
    via TEXT NOT NULL,
    next_path TEXT NOT NULL
);
CREATE INDEX sign_in_challenges_user_idx ON sign_in_challenges (user_id, created_at);
CREATE INDEX sign_in_challenges_expires_idx ON sign_in_challenges (expires_at);
