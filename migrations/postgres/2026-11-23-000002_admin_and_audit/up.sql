-- The display name, lower-cased by the application, for case-insensitive prefix search.
ALTER TABLE users ADD COLUMN search_name TEXT COLLATE "C" NOT NULL DEFAULT '';
UPDATE users SET search_name = lower(display_name);
-- Keyset pagination: every sort order has an index ending in id.
CREATE INDEX users_search_name_idx ON users (search_name, id);
CREATE INDEX users_created_idx ON users (created_at, id);
CREATE INDEX users_last_login_idx ON users (last_login_at, id);

-- Who did what to whom. No foreign keys: the history outlives deleted users, so names are
-- copied in at the time of the event.
CREATE TABLE audit_events (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    occurred_at TIMESTAMP NOT NULL,
    actor_id BIGINT,
    actor_username TEXT,
    action TEXT NOT NULL,
    target_id BIGINT,
    target_username TEXT,
    client_ip TEXT,
    details TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_events_actor_idx ON audit_events (actor_id, id);
CREATE INDEX audit_events_target_idx ON audit_events (target_id, id);
