//! HMAC keys derived from the signing secret, one per purpose (CSRF tokens, device
//! credentials, name buckets), so one secret serves every use and no two uses share a key.
//! During a secret rotation the previous secret's key still verifies what it signed.
use aws_lc_rs::{constant_time, hmac};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::config::JwtSecret;

pub struct DerivedKey {
    current: hmac::Key,
    previous: Option<hmac::Key>,
}

impl DerivedKey {
    /// The key for `label` (a fixed, versioned purpose name) from the secret(s).
    pub fn derive(secret: &JwtSecret, previous: Option<&JwtSecret>, label: &[u8]) -> Self {
        let derive = |secret: &JwtSecret| {
            let master = hmac::Key::new(hmac::HMAC_SHA256, secret.expose());
            hmac::Key::new(hmac::HMAC_SHA256, hmac::sign(&master, label).as_ref())
        };
        Self { current: derive(secret), previous: previous.map(derive) }
    }

    /// The tag of `message` under the current key.
    pub fn sign(&self, message: &[u8]) -> hmac::Tag {
        hmac::sign(&self.current, message)
    }

    /// The tag as URL-safe base64, for tokens and cookies.
    pub fn sign_base64(&self, message: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(self.sign(message).as_ref())
    }

    /// Whether `tag` (URL-safe base64) is `message`'s under the current or the previous key,
    /// compared in constant time.
    pub fn verify_base64(&self, message: &[u8], tag: &str) -> bool {
        let Ok(tag) = URL_SAFE_NO_PAD.decode(tag) else { return false };
        std::iter::once(&self.current)
            .chain(self.previous.as_ref())
            .any(|key| constant_time::verify_slices_are_equal(hmac::sign(key, message).as_ref(), &tag).is_ok())
    }
}
