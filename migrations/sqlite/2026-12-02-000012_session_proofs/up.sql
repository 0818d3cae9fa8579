-- When the person last proved who they are in this session (password, second factor or
-- passkey): at sign-in, and again on the "Confirm it's you" page. Changes that control
-- sign-in (e-mail, passkeys, authenticator apps, recovery codes) need a recent proof, so a
-- stolen session alone cannot take the account over. Sessions from before count from their
-- start.
ALTER TABLE sessions ADD COLUMN proved_at TIMESTAMP;
