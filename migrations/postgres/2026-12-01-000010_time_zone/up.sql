-- The zone each person reads times in (an IANA name; pages show times in it).
ALTER TABLE users ADD COLUMN time_zone TEXT NOT NULL DEFAULT 'UTC';
