//! Device credentials (OWASP's "device cookie" pattern): after a correct password, the browser
//! (a cookie) or API client (`device_token`) gets a signed credential naming that account. A
//! later sign-in to the same account that presents it is counted on the device's own small
//! budget instead of the account's, so strangers guessing the password can pause sign-in from
//! unknown clients but never from the owner's own devices.
//!
//! Format: `<user id>.<issued, unix seconds>.<nonce>.<HMAC>`; one cookie holds up to
//! [`MAX_CREDENTIALS`] of them (one per account signed in on that browser), joined by `~`.
use crate::config::JwtSecret;
use crate::crypto::keys::DerivedKey;
use crate::random;

/// How long a device stays known without a new successful sign-in.
pub const LIFETIME: std::time::Duration = std::time::Duration::from_secs(365 * 24 * 60 * 60);
/// Accounts remembered per browser (a shared family computer, an admin's second account).
pub const MAX_CREDENTIALS: usize = 5;
/// Longer values are not ours; they are ignored unread.
pub const MAX_PRESENTED_CHARS: usize = 1024;
const SEPARATOR: char = '~';

/// Signs with a key derived from the current secret; credentials from the previous secret
/// still verify during a rotation.
pub struct DeviceKey(DerivedKey);

impl DeviceKey {
    pub fn derive(secret: &JwtSecret, previous: Option<&JwtSecret>) -> Self {
        Self(DerivedKey::derive(secret, previous, b"portcullis device credential key v1"))
    }

    /// A new credential for `user_id`, issued at `now` (unix seconds).
    pub fn issue(&self, user_id: i64, now: i64) -> String {
        let body = format!("{user_id}.{now}.{}", random::token_base64(16));
        format!("{body}.{}", self.0.sign_base64(body.as_bytes()))
    }

    /// The nonce of the first valid, unexpired credential for `user_id` among those presented
    /// (a `~`-joined list), or `None`. The nonce names the device's own counter.
    pub fn verify_for(&self, presented: &str, user_id: i64, now: i64) -> Option<String> {
        if presented.len() > MAX_PRESENTED_CHARS {
            return None;
        }
        presented
            .split(SEPARATOR)
            .take(MAX_CREDENTIALS)
            .find_map(|credential| self.verify_one(credential, user_id, now))
    }

    /// Whether any of the presented credentials is valid, for whichever account it names.
    /// Whether the browser's device cookie (`presented`, possibly several credentials) holds
    /// a valid one for `user_id`: it signed in to this account before.
    pub fn recognises(&self, presented: &str, user_id: i64, now: i64) -> bool {
        presented.split(SEPARATOR).any(|credential| self.verify_for(credential, user_id, now).is_some())
    }

    pub fn verify_any(&self, presented: &str, now: i64) -> bool {
        presented.len() <= MAX_PRESENTED_CHARS
            && presented.split(SEPARATOR).take(MAX_CREDENTIALS).any(|credential| {
                let user_id = credential.split('.').next().and_then(|id| id.parse().ok());
                user_id.is_some_and(|id| self.verify_one(credential, id, now).is_some())
            })
    }

    fn verify_one(&self, credential: &str, user_id: i64, now: i64) -> Option<String> {
        let (body, mac) = credential.rsplit_once('.')?;
        let mut parts = body.split('.');
        let (id, issued, nonce) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || id.parse::<i64>().ok()? != user_id || nonce.is_empty() {
            return None;
        }
        let issued: i64 = issued.parse().ok()?;
        let lifetime = i64::try_from(LIFETIME.as_secs()).unwrap_or(i64::MAX);
        if issued > now + 60 || now.saturating_sub(issued) > lifetime {
            return None;
        }
        self.0.verify_base64(body.as_bytes(), mac).then(|| nonce.to_owned())
    }
}

/// The cookie value after a successful sign-in to `user_id`: the new credential first, the
/// browser's credentials for other accounts after it, at most [`MAX_CREDENTIALS`].
pub fn remember(presented: &str, user_id: i64, new_credential: String) -> String {
    let prefix = format!("{user_id}.");
    let others = presented
        .split(SEPARATOR)
        .filter(|credential| !credential.is_empty() && !credential.starts_with(&prefix))
        .filter(|credential| credential.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')))
        .take(MAX_CREDENTIALS - 1);
    std::iter::once(new_credential.as_str()).chain(others).collect::<Vec<_>>().join("~")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> DeviceKey {
        DeviceKey::derive(&JwtSecret::parse(&random::token_base64(48), "test").unwrap(), None)
    }

    #[test]
    fn a_credential_verifies_only_for_its_own_account_and_only_unaltered() {
        let key = key();
        let now = 1_800_000_000;
        let credential = key.issue(7, now);
        let nonce = key.verify_for(&credential, 7, now).expect("valid for its account");
        assert_eq!(nonce.len(), 22);
        assert_eq!(key.verify_for(&credential, 8, now), None, "another account");
        let forged = credential.replacen("7.", "8.", 1);
        assert_eq!(key.verify_for(&forged, 8, now), None, "a changed account id breaks the signature");
        assert_eq!(self::key().verify_for(&credential, 7, now), None, "another installation's key");
        assert_eq!(key.verify_for("", 7, now), None);
        assert_eq!(key.verify_for("7.1.2.3.4.5", 7, now), None);
    }

    #[test]
    fn a_credential_expires_after_its_lifetime() {
        let key = key();
        let issued = 1_800_000_000;
        let credential = key.issue(7, issued);
        let lifetime = LIFETIME.as_secs() as i64;
        assert!(key.verify_for(&credential, 7, issued + lifetime).is_some());
        assert!(key.verify_for(&credential, 7, issued + lifetime + 1).is_none());
    }

    #[test]
    fn one_browser_remembers_a_few_accounts_newest_first() {
        let key = key();
        let now = 1_800_000_000;
        let mut cookie = String::new();
        for user in 1..=7 {
            cookie = remember(&cookie, user, key.issue(user, now));
        }
        assert_eq!(cookie.split('~').count(), MAX_CREDENTIALS);
        assert!(key.verify_for(&cookie, 7, now).is_some());
        assert!(key.verify_for(&cookie, 3, now).is_some());
        assert!(key.verify_for(&cookie, 2, now).is_none(), "the oldest fell out");
        let again = remember(&cookie, 5, key.issue(5, now));
        assert_eq!(again.split('~').count(), MAX_CREDENTIALS, "signing in again replaces, never adds");
        assert!(again.starts_with("5."));
    }
}
