DROP TABLE oauth_ended_sessions;
DROP TABLE oauth_logout_deliveries;
ALTER TABLE oauth_clients DROP COLUMN backchannel_logout_uri;
