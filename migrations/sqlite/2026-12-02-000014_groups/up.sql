-- Groups: who may open which app. Flat; names unique case-insensitively (stored lower-cased
-- by the application, like usernames), with a display name and a description.
CREATE TABLE user_groups (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    name TEXT NOT NULL,
    display_name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX user_groups_name_key ON user_groups (name);
CREATE UNIQUE INDEX user_groups_name_lower_key ON user_groups (lower(name));

-- Who is in a group. The primary key pages a group's members by user id; the second index
-- answers "which groups is this user in" (tokens, the user page, the user list's filter).
CREATE TABLE group_members (
    group_id BIGINT NOT NULL REFERENCES user_groups (id) ON DELETE CASCADE,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    added_at TIMESTAMP NOT NULL,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_members_user_idx ON group_members (user_id, group_id);

-- Users who may add and remove the members of a group (and nothing else).
CREATE TABLE group_managers (
    group_id BIGINT NOT NULL REFERENCES user_groups (id) ON DELETE CASCADE,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_managers_user_idx ON group_managers (user_id, group_id);

-- Sessions whose tokens say something no longer true (a group joined or left): every
-- instance reads this table with the revoked sessions, and a token issued before
-- `changed_at` is renewed (the session goes on; its next token says what is true now).
CREATE TABLE renewed_sessions (
    sid TEXT PRIMARY KEY NOT NULL,
    changed_at TIMESTAMP NOT NULL
);
CREATE INDEX renewed_sessions_changed_idx ON renewed_sessions (changed_at);
