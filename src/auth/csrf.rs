//! CSRF tokens: an HMAC over something the attacker's page cannot read or set.
//! Signed-in forms bind to the login's session id (`sid`); the login form binds to a random
//! nonce in its own cookie (login CSRF). Both are verified in constant time.
use crate::config::JwtSecret;
use crate::crypto::keys::DerivedKey;

/// Signs with the key derived from the current secret; during a secret rotation, tokens from
/// the previous secret (forms rendered before the restart) still verify.
pub struct CsrfKey(DerivedKey);

impl CsrfKey {
    /// Derived from the signing secret with a separate label, so one secret serves both uses.
    pub fn derive(secret: &JwtSecret, previous: Option<&JwtSecret>) -> Self {
        Self(DerivedKey::derive(secret, previous, b"portcullis csrf key v1"))
    }

    pub fn for_session(&self, session_id: &str) -> String {
        self.sign("session", session_id)
    }

    pub fn verify_session(&self, session_id: &str, presented: &str) -> bool {
        self.verify("session", session_id, presented)
    }

    pub fn for_login(&self, nonce: &str) -> String {
        self.sign("login", nonce)
    }

    pub fn verify_login(&self, nonce: &str, presented: &str) -> bool {
        self.verify("login", nonce, presented)
    }

    /// Binds a pending sign-in's token to the login form's nonce of the browser that typed the
    /// password: the second-step cookie is `token.tag`, and worthless in another browser.
    pub fn for_pending_step(&self, nonce: &str, token: &str) -> String {
        self.sign("pending sign-in", &format!("{nonce}\0{token}"))
    }

    pub fn verify_pending_step(&self, nonce: &str, token: &str, presented: &str) -> bool {
        !nonce.is_empty()
            && !token.is_empty()
            && self.verify("pending sign-in", &format!("{nonce}\0{token}"), presented)
    }

    fn sign(&self, purpose: &str, value: &str) -> String {
        self.0.sign_base64(format!("{purpose}\0{value}").as_bytes())
    }

    fn verify(&self, purpose: &str, value: &str, presented: &str) -> bool {
        !value.is_empty() && self.0.verify_base64(format!("{purpose}\0{value}").as_bytes(), presented)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: &str) -> CsrfKey {
        CsrfKey::derive(&JwtSecret::parse(&format!("{seed}-Vq3xL9TzK2mWp8RbN4cYh7JdF6sGa1Ue"), "t").unwrap(), None)
    }

    #[test]
    fn a_token_verifies_only_for_its_own_session_purpose_and_key() {
        let k = key("a");
        let token = k.for_session("sid-1");
        assert!(k.verify_session("sid-1", &token));
        assert!(!k.verify_session("sid-2", &token));
        assert!(!k.verify_login("sid-1", &token));
        assert!(!key("b").verify_session("sid-1", &token));
        assert!(!k.verify_session("", &k.for_session("")));
        assert!(!k.verify_session("sid-1", ""));
    }
}
