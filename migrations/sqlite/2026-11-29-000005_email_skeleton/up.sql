-- The Unicode TR39 confusable skeleton of each e-mail address: two addresses that look alike
-- ("аlice" with a Cyrillic а, "ａlice" in fullwidth) have the same one, and only one account may
-- hold it. Filled in by the application after this migration (it needs Unicode tables).
ALTER TABLE users ADD COLUMN email_skeleton TEXT;
CREATE UNIQUE INDEX users_email_skeleton ON users (email_skeleton);
