//! Secrets Portcullis must be able to read back (authenticator-app keys), kept sealed in the
//! database: AES-256-GCM under a key derived from the signing secret, with the owner's user id
//! as associated data, so neither a copy of the database alone nor moving a row to another
//! user gives anything. Each sealed value names its key; after a secret rotation the previous
//! key still opens what it sealed, and `reseal` moves it to the current one.
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::config::JwtSecret;

struct Key {
    id: String,
    aead: LessSafeKey,
}

impl Key {
    fn derive(secret: &JwtSecret, label: &[u8]) -> Self {
        let master = hmac::Key::new(hmac::HMAC_SHA256, secret.expose());
        let material = hmac::sign(&master, label);
        let id_tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, material.as_ref()), b"key id");
        let unbound = UnboundKey::new(&AES_256_GCM, material.as_ref()).expect("HMAC-SHA-256 gives a 32-byte key");
        Self { id: URL_SAFE_NO_PAD.encode(&id_tag.as_ref()[..6]), aead: LessSafeKey::new(unbound) }
    }
}

pub struct SealingKey {
    current: Key,
    previous: Option<Key>,
    purpose: &'static str,
}

/// What `open` found.
pub struct Opened {
    pub plaintext: Vec<u8>,
    /// Sealed under the previous secret's key: reseal it under the current one.
    pub stale: bool,
}

impl SealingKey {
    /// `label` names the purpose (fixed and versioned), so no two uses share a key.
    pub fn derive(secret: &JwtSecret, previous: Option<&JwtSecret>, label: &'static str) -> Self {
        Self {
            current: Key::derive(secret, label.as_bytes()),
            previous: previous.map(|previous| Key::derive(previous, label.as_bytes())),
            purpose: label,
        }
    }

    fn aad(&self, owner: i64) -> Vec<u8> {
        format!("{} owner {owner}", self.purpose).into_bytes()
    }

    /// `key id` `.` base64(nonce ‖ ciphertext ‖ tag).
    pub fn seal(&self, owner: i64, plaintext: &[u8]) -> String {
        let nonce_bytes = crate::random::bytes::<NONCE_LEN>();
        let mut sealed = plaintext.to_vec();
        self.current
            .aead
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(self.aad(owner)),
                &mut sealed,
            )
            .expect("AES-GCM seals any short message");
        let mut out = nonce_bytes.to_vec();
        out.extend_from_slice(&sealed);
        format!("{}.{}", self.current.id, URL_SAFE_NO_PAD.encode(out))
    }

    /// The plaintext, if `sealed` was sealed for `owner` under the current or previous key.
    pub fn open(&self, owner: i64, sealed: &str) -> Option<Opened> {
        let (id, body) = sealed.split_once('.')?;
        let (key, stale) = if id == self.current.id {
            (&self.current, false)
        } else {
            (self.previous.as_ref().filter(|previous| previous.id == id)?, true)
        };
        let bytes = URL_SAFE_NO_PAD.decode(body).ok()?;
        if bytes.len() < NONCE_LEN {
            return None;
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut in_out = ciphertext.to_vec();
        let plaintext = key.aead.open_in_place(nonce, Aad::from(self.aad(owner)), &mut in_out).ok()?;
        Some(Opened { plaintext: plaintext.to_vec(), stale })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> JwtSecret {
        JwtSecret::parse(&crate::random::token_base64(48), "test").unwrap()
    }

    #[test]
    fn only_its_owner_under_a_known_key_opens_a_sealed_value() {
        let (old, new) = (secret(), secret());
        let before = SealingKey::derive(&old, None, "test v1");
        let sealed = before.seal(7, b"the secret");
        assert!(!sealed.contains("secret"));
        assert_eq!(before.open(7, &sealed).unwrap().plaintext, b"the secret");
        assert!(before.open(8, &sealed).is_none(), "another user's row");
        assert!(SealingKey::derive(&old, None, "other v1").open(7, &sealed).is_none(), "another purpose");

        let rotated = SealingKey::derive(&new, Some(&old), "test v1");
        let opened = rotated.open(7, &sealed).unwrap();
        assert!(opened.stale);
        let resealed = rotated.seal(7, &opened.plaintext);
        assert!(!rotated.open(7, &resealed).unwrap().stale);
        assert!(SealingKey::derive(&new, None, "test v1").open(7, &sealed).is_none(), "the old key was dropped");

        let mut tampered = resealed.clone();
        tampered.pop();
        tampered.push(if resealed.ends_with('A') { 'B' } else { 'A' });
        assert!(rotated.open(7, &tampered).is_none());
        assert!(rotated.open(7, "nonsense").is_none());
        assert!(rotated.open(7, "x.").is_none());
    }
}
