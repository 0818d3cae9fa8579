-- OpenID Connect Back-Channel Logout 1.0: where an app wants to hear that a session it signed
-- in through has ended ('' = it does not).
ALTER TABLE oauth_clients ADD COLUMN backchannel_logout_uri TEXT NOT NULL DEFAULT '';

-- Logout tokens waiting to go out, written in the transaction that ends the session (like the
-- mail outbox) and delivered by each instance's deliverer: one row per ended session and app.
CREATE TABLE oauth_logout_deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    client_id BIGINT NOT NULL REFERENCES oauth_clients (id) ON DELETE CASCADE,
    -- The ended Portcullis session (the token's sid is derived from it) and its user (the
    -- token's sub). No foreign key: a deleted user's apps must still hear of it.
    session_sid TEXT NOT NULL,
    user_id BIGINT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP NOT NULL,
    -- An instance is delivering it until then (one that died lets go when it passes).
    claimed_until TIMESTAMP,
    delivered_at TIMESTAMP,
    -- Given up on (the app refused it for good, or it stayed unreachable too long).
    failed_at TIMESTAMP,
    last_error TEXT
);
CREATE UNIQUE INDEX oauth_logout_deliveries_once_idx ON oauth_logout_deliveries (session_sid, client_id);
CREATE INDEX oauth_logout_deliveries_due_idx ON oauth_logout_deliveries (next_attempt_at, id)
    WHERE delivered_at IS NULL AND failed_at IS NULL;
CREATE INDEX oauth_logout_deliveries_client_idx ON oauth_logout_deliveries (client_id, id);
CREATE INDEX oauth_logout_deliveries_created_idx ON oauth_logout_deliveries (created_at);

-- Sessions that ended while apps were signed in through them: the sign-out writes one row
-- whatever the number of apps, and a deliverer then ends the session's grants and queues a
-- logout token per app (above) in one transaction, off the sign-out's path.
CREATE TABLE oauth_ended_sessions (
    session_sid TEXT PRIMARY KEY NOT NULL,
    user_id BIGINT NOT NULL,
    -- The apps it had signed in to (their ids, separated by spaces), kept here because
    -- deleting a user deletes the grants before a deliverer reads them.
    client_ids TEXT NOT NULL,
    ended_at TIMESTAMP NOT NULL
);
