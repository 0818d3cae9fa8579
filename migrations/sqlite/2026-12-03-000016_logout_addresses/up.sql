-- Where an app may send its users after they signed out through Portcullis (OpenID Connect
-- RP-Initiated Logout 1.0): one address per line, matched exactly like the redirect URIs.
ALTER TABLE oauth_clients ADD COLUMN post_logout_redirect_uris TEXT NOT NULL DEFAULT '';
