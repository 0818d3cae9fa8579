DROP TABLE renewed_sessions;
DROP TABLE group_managers;
DROP TABLE group_members;
DROP TABLE user_groups;
