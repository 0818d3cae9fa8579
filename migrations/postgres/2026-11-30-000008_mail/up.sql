-- Mail waiting to go out, written in the transaction of the change that causes it and
-- delivered by each instance's sender thread.
CREATE TABLE outbox (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    created_at TIMESTAMP NOT NULL,
    -- What the message is (password_reset, invitation, notice.password, …): for the admin
    -- page, and to keep an attacker from flooding one address.
    kind TEXT NOT NULL,
    recipient TEXT NOT NULL,
    subject TEXT NOT NULL,
    -- The rendered message, sealed (AES-256-GCM): it may hold a live link. Emptied once sent.
    sealed_body TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP NOT NULL,
    -- A sender is delivering it until then (a sender that died lets go when it passes).
    claimed_until TIMESTAMP,
    sent_at TIMESTAMP,
    -- Given up on (the server refused it for good, or it stayed undeliverable for two days).
    failed_at TIMESTAMP,
    last_error TEXT
);
CREATE INDEX outbox_due_idx ON outbox (next_attempt_at, id) WHERE sent_at IS NULL AND failed_at IS NULL;
CREATE INDEX outbox_recipient_idx ON outbox (recipient, kind, created_at);
CREATE INDEX outbox_created_idx ON outbox (created_at);

-- Links sent by mail (reset a password, accept an invitation, confirm a new address): only
-- the SHA-256 of the token is kept.
CREATE TABLE email_links (
    token_hash TEXT PRIMARY KEY NOT NULL,
    purpose TEXT NOT NULL,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- The address a confirmation link would set.
    new_email TEXT,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    used_at TIMESTAMP,
    -- Replaced by a newer link, revoked, or made moot by a password change.
    voided_at TIMESTAMP
);
CREATE INDEX email_links_user_idx ON email_links (user_id, purpose);
CREATE INDEX email_links_expires_idx ON email_links (expires_at);
