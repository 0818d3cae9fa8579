-- Failed sign-in counters, shared by every instance: one row per attempted login name
-- ("account:alice") and per client address ("ip:192.0.2.7"), whether or not the name exists.
CREATE TABLE login_throttles (
    throttle_key TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    -- Attempts counted in the current window.
    attempts INTEGER NOT NULL,
    window_started_at TIMESTAMP NOT NULL,
    -- How many times this key has been paused recently: each pause lasts twice the last.
    strikes INTEGER NOT NULL,
    paused_until TIMESTAMP
);
CREATE INDEX login_throttles_window_idx ON login_throttles (window_started_at);
