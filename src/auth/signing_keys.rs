//! The keys access tokens are signed with, kept in the database so every instance shares
//! them: generated on first start (Ed25519 or P-256), private halves sealed under a key derived
//! from the signing secret, public halves published as a JWKS. A new key is published
//! [`PUBLISH_LEAD`] before it signs anything, so every cache of the JWKS knows it first; the key
//! it replaces stays published until every token it signed has expired, then is dropped.
use std::time::Duration;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::NaiveDateTime;

use super::keys::{KeyPurpose, LoadedKey, thumbprint};
use super::tokens::LEEWAY;
use crate::config::{JwtAlgorithm, JwtSecret, TokenSigning};
use crate::crypto::sealed::SealingKey;
use crate::db::signing_keys::{self, NewKey, StoredKey};
use crate::db::{DbConnection, write_transaction};

/// How long verifiers may cache `/.well-known/jwks.json` (its `Cache-Control`).
pub const JWKS_MAX_AGE: Duration = Duration::from_secs(5 * 60);
/// A new key is in the JWKS this long before it signs: longer than the JWKS may be cached plus
/// an instance's reload of the keys.
pub const PUBLISH_LEAD: Duration = Duration::from_secs(6 * 60);
/// Sealed private keys are bound to this owner id (they belong to no user).
const OWNER: i64 = 0;

/// A new key pair: (PKCS#8, public bytes).
fn generate(alg: JwtAlgorithm) -> anyhow::Result<(Vec<u8>, Vec<u8>)> {
    let rng = SystemRandom::new();
    match alg {
        JwtAlgorithm::EdDsa => {
            let pkcs8 =
                Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| anyhow::anyhow!("Ed25519 key generation failed"))?;
            let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|error| anyhow::anyhow!("{error}"))?;
            Ok((pkcs8.as_ref().to_vec(), pair.public_key().as_ref().to_vec()))
        }
        JwtAlgorithm::Es256 => {
            let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                .map_err(|_| anyhow::anyhow!("P-256 key generation failed"))?;
            let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
                .map_err(|error| anyhow::anyhow!("{error}"))?;
            Ok((pkcs8.as_ref().to_vec(), pair.public_key().as_ref().to_vec()))
        }
        JwtAlgorithm::Rs256 => {
            use aws_lc_rs::encoding::AsDer;
            let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                .map_err(|_| anyhow::anyhow!("RSA key generation failed"))?;
            let pkcs8 = pair.as_der().map_err(|_| anyhow::anyhow!("the RSA key could not be encoded"))?;
            Ok((pkcs8.as_ref().to_vec(), pair.public_key().as_ref().to_vec()))
        }
        JwtAlgorithm::Hs256 => anyhow::bail!("HS256 signs with the secret: there is no key pair to make"),
    }
}

/// The algorithms an app may ask its ID tokens to be signed with; each has its own key.
pub const ID_TOKEN_ALGORITHMS: [JwtAlgorithm; 3] = [JwtAlgorithm::Rs256, JwtAlgorithm::EdDsa, JwtAlgorithm::Es256];

fn purpose_of(key: &StoredKey) -> KeyPurpose {
    KeyPurpose::parse(&key.purpose).unwrap_or(KeyPurpose::Access)
}

fn is_access(key: &&StoredKey) -> bool {
    purpose_of(key) == KeyPurpose::Access
}

fn at(seconds: NaiveDateTime) -> i64 {
    seconds.and_utc().timestamp()
}

fn later(at: NaiveDateTime, by: Duration) -> NaiveDateTime {
    at + chrono::Duration::from_std(by).unwrap_or(chrono::Duration::MAX)
}

/// How the stored keys stand, for `portcullis keys list`.
pub struct KeyState {
    pub kid: String,
    pub alg: String,
    pub state: String,
}

pub struct SigningKeys {
    sealing: SealingKey,
    /// The access tokens' lifetime: a retired key stays until the last token it signed expired.
    ttl: Duration,
}

impl SigningKeys {
    pub fn new(secret: &JwtSecret, previous: Option<&JwtSecret>, ttl: Duration) -> Self {
        Self { sealing: SealingKey::derive(secret, previous, "portcullis signing keys v1"), ttl }
    }

    /// When a key that stops signing at `at` may be forgotten.
    fn drop_time(&self, at: NaiveDateTime) -> NaiveDateTime {
        later(at, self.ttl + LEEWAY + Duration::from_secs(60))
    }

    fn insert_new(
        &self,
        conn: &mut DbConnection,
        (alg, purpose): (JwtAlgorithm, KeyPurpose),
        now: NaiveDateTime,
        lead: Duration,
    ) -> anyhow::Result<String> {
        let (pkcs8, public) = generate(alg)?;
        let kid = thumbprint(alg, &public)?;
        let sealed = self.sealing.seal(OWNER, &pkcs8);
        let public = URL_SAFE_NO_PAD.encode(&public);
        signing_keys::insert(
            conn,
            &NewKey {
                kid: &kid,
                alg: alg.name(),
                sealed_private_key: Some(&sealed),
                public_key: Some(&public),
                published_at: now,
                signs_from: later(now, lead),
                retired_at: None,
                drop_after: None,
                purpose: purpose.as_str(),
            },
        )?;
        Ok(kid)
    }

    /// At start-up, once per installation and after a change of `PORTCULLIS_JWT_ALG`: makes sure a
    /// key of the configured algorithm signs, and retires the others (they verify until their
    /// tokens expire). Switching from HS256 records until when the secret's tokens still verify,
    /// so nobody is signed out. Returns the kid of a key it created.
    pub fn ensure(
        &self,
        conn: &mut DbConnection,
        signing: &TokenSigning,
        now: NaiveDateTime,
    ) -> anyhow::Result<Option<String>> {
        write_transaction(conn, |conn| -> anyhow::Result<Option<String>> {
            signing_keys::lock(conn)?;
            let live: Vec<StoredKey> =
                signing_keys::live(conn, now)?.into_iter().filter(|key| is_access(&key)).collect();
            let active = |key: &&StoredKey| key.retired_at.is_none_or(|retired| retired > now);
            let wanted = signing.algorithm.name();
            if signing.algorithm == JwtAlgorithm::Hs256 {
                // The secret signs again: public keys still verify what they signed, then go.
                for key in live.iter().filter(active).filter(|key| key.alg != "HS256") {
                    signing_keys::retire(conn, key.id, now, self.drop_time(now))?;
                }
                return Ok(None);
            }
            // A key we can sign with: its private half opens under our secrets.
            let usable = |key: &&StoredKey| {
                key.sealed_private_key.as_deref().is_some_and(|sealed| self.sealing.open(OWNER, sealed).is_some())
            };
            if live.iter().filter(active).filter(usable).any(|key| key.alg == wanted) {
                return Ok(None);
            }
            // The first key of this algorithm signs at once: nobody can have cached a JWKS with it
            // missing that matters more than signing in (tokens of other keys still verify).
            let kid = self.insert_new(conn, (signing.algorithm, KeyPurpose::Access), now, Duration::ZERO)?;
            for key in live.iter().filter(active).filter(|key| key.alg != "HS256") {
                signing_keys::retire(conn, key.id, now, self.drop_time(now))?;
            }
            // Sessions exist from before: their tokens were signed with the secret (HS256, the only
            // kind before key pairs) and keep verifying until they expire. A new installation has
            // none to honour.
            let signed_with_the_secret = !live.iter().filter(active).any(|key| key.alg != "HS256")
                && !live.iter().any(|key| key.alg == "HS256")
                && crate::db::sessions::any(conn)?;
            if signed_with_the_secret {
                signing_keys::insert(
                    conn,
                    &NewKey {
                        kid: &format!("hs256-until-{}", now.and_utc().timestamp()),
                        alg: "HS256",
                        sealed_private_key: None,
                        public_key: None,
                        published_at: now,
                        signs_from: now,
                        retired_at: Some(now),
                        drop_after: Some(self.drop_time(now)),
                        purpose: KeyPurpose::Access.as_str(),
                    },
                )?;
            }
            Ok(Some(kid))
        })
    }

    /// A new key of `alg`: published now, signing after `lead` (zero in an emergency: tokens of
    /// a compromised key then stop verifying as soon as `drop_old` is set). The keys it replaces
    /// stop signing when it starts, and are dropped once their tokens have expired (`drop_old`:
    /// at once; browsers and API clients then renew with their refresh tokens).
    pub fn rotate(
        &self,
        conn: &mut DbConnection,
        alg: JwtAlgorithm,
        lead: Duration,
        drop_old: bool,
        now: NaiveDateTime,
    ) -> anyhow::Result<String> {
        if alg == JwtAlgorithm::Hs256 {
            anyhow::bail!(
                "with PORTCULLIS_JWT_ALG=HS256 tokens are signed with the secret: rotate it with PORTCULLIS_JWT_SECRET_PREVIOUS"
            );
        }
        if drop_old && !lead.is_zero() {
            anyhow::bail!("dropping the old keys needs the new one to sign at once: nothing could sign meanwhile");
        }
        write_transaction(conn, |conn| {
            signing_keys::lock(conn)?;
            self.rotate_locked(conn, (alg, KeyPurpose::Access), lead, drop_old, now)
        })
    }

    /// Makes sure a key signs the apps' ID tokens with `alg` (the first one for an algorithm
    /// signs at once: no app can have cached a JWKS it was missing from). True when one was made.
    pub fn ensure_id_key(
        &self,
        conn: &mut DbConnection,
        alg: JwtAlgorithm,
        now: NaiveDateTime,
    ) -> anyhow::Result<bool> {
        if !ID_TOKEN_ALGORITHMS.contains(&alg) {
            anyhow::bail!("ID tokens are not signed with {}", alg.name());
        }
        write_transaction(conn, |conn| {
            signing_keys::lock(conn)?;
            let signs = signing_keys::live(conn, now)?.iter().any(|key| {
                purpose_of(key) == KeyPurpose::Id
                    && key.alg == alg.name()
                    && key.retired_at.is_none_or(|retired| retired > now)
                    && key
                        .sealed_private_key
                        .as_deref()
                        .is_some_and(|sealed| self.sealing.open(OWNER, sealed).is_some())
            });
            if signs {
                return Ok(false);
            }
            self.insert_new(conn, (alg, KeyPurpose::Id), now, Duration::ZERO)?;
            Ok(true)
        })
    }

    /// `rotate`, inside a write transaction that holds `signing_keys::lock`.
    /// An access key replaces every access key; an ID-token key only those of its algorithm.
    fn rotate_locked(
        &self,
        conn: &mut DbConnection,
        (alg, purpose): (JwtAlgorithm, KeyPurpose),
        lead: Duration,
        drop_old: bool,
        now: NaiveDateTime,
    ) -> anyhow::Result<String> {
        let live = signing_keys::live(conn, now)?;
        let kid = self.insert_new(conn, (alg, purpose), now, lead)?;
        let starts = later(now, lead);
        let replaced =
            |key: &&StoredKey| purpose_of(key) == purpose && (purpose == KeyPurpose::Access || key.alg == alg.name());
        for key in live
            .iter()
            .filter(replaced)
            .filter(|key| key.alg != "HS256" && key.retired_at.is_none_or(|retired| retired > starts))
        {
            let drop_after = if drop_old { now } else { self.drop_time(starts) };
            signing_keys::retire(conn, key.id, starts.min(drop_after), drop_after)?;
        }
        Ok(kid)
    }

    /// Rotates when the newest key is older than the rotation period and no newer one waits
    /// (the access key, and each ID-token key in use). Decided and done under the lock, in one
    /// transaction: instances checking at the same moment make one new key between them.
    /// Returns the kid of the new access key.
    pub fn rotate_if_due(
        &self,
        conn: &mut DbConnection,
        signing: &TokenSigning,
        now: NaiveDateTime,
    ) -> anyhow::Result<Option<String>> {
        let Some(period) = signing.rotation else { return Ok(None) };
        write_transaction(conn, |conn| {
            signing_keys::lock(conn)?;
            let live = signing_keys::live(conn, now)?;
            let due = |purpose: KeyPurpose, alg: JwtAlgorithm| {
                let newest = live
                    .iter()
                    .filter(|key| purpose_of(key) == purpose && key.alg == alg.name())
                    .map(|key| key.signs_from)
                    .max();
                newest.is_some_and(|from| later(from, period) <= now)
            };
            for alg in ID_TOKEN_ALGORITHMS {
                if due(KeyPurpose::Id, alg) {
                    self.rotate_locked(conn, (alg, KeyPurpose::Id), PUBLISH_LEAD, false, now)?;
                }
            }
            let access_newest = live
                .iter()
                .filter(is_access)
                .filter(|key| key.alg == signing.algorithm.name())
                .map(|key| key.signs_from)
                .max();
            if signing.algorithm == JwtAlgorithm::Hs256 || access_newest.is_some_and(|from| later(from, period) > now) {
                return Ok(None);
            }
            Ok(Some(self.rotate_locked(conn, (signing.algorithm, KeyPurpose::Access), PUBLISH_LEAD, false, now)?))
        })
    }

    /// The keys not yet dropped, their private halves opened; dropped rows are deleted.
    pub fn load(&self, conn: &mut DbConnection, now: NaiveDateTime) -> anyhow::Result<Vec<LoadedKey>> {
        let live = signing_keys::live(conn, now)?;
        Ok(live
            .into_iter()
            .filter_map(|key| {
                let alg = JwtAlgorithm::parse(&key.alg).ok()?;
                let public = key
                    .public_key
                    .as_deref()
                    .and_then(|public| URL_SAFE_NO_PAD.decode(public).ok())
                    .unwrap_or_default();
                let private_pkcs8 = key
                    .sealed_private_key
                    .as_deref()
                    .and_then(|sealed| self.sealing.open(OWNER, sealed))
                    .map(|opened| opened.plaintext);
                Some(LoadedKey {
                    purpose: purpose_of(&key),
                    kid: key.kid,
                    alg,
                    private_pkcs8,
                    public,
                    published_at: at(key.published_at),
                    signs_from: at(key.signs_from),
                    retired_at: key.retired_at.map(at),
                    drop_after: key.drop_after.map(at),
                })
            })
            .collect())
    }

    /// Housekeeping: forgets keys whose tokens have all expired.
    pub fn prune(conn: &mut DbConnection, now: NaiveDateTime) -> anyhow::Result<usize> {
        Ok(signing_keys::delete_dropped(conn, now)?)
    }

    /// After a secret rotation: seals every private key under the current secret.
    pub fn reseal_all(&self, conn: &mut DbConnection) -> anyhow::Result<usize> {
        let mut resealed = 0;
        for key in signing_keys::all(conn)? {
            if let Some(opened) = key.sealed_private_key.as_deref().and_then(|sealed| self.sealing.open(OWNER, sealed))
                && opened.stale
            {
                signing_keys::reseal(conn, key.id, &self.sealing.seal(OWNER, &opened.plaintext))?;
                resealed += 1;
            }
        }
        Ok(resealed)
    }

    /// Every stored key and what it does at `now`, for people.
    pub fn describe(&self, conn: &mut DbConnection, now: NaiveDateTime) -> anyhow::Result<Vec<KeyState>> {
        let format = |at: NaiveDateTime| format!("{} UTC", at.format("%Y-%m-%d %H:%M"));
        Ok(signing_keys::all(conn)?
            .into_iter()
            .map(|key| {
                let unreadable =
                    key.sealed_private_key.as_deref().is_some_and(|sealed| self.sealing.open(OWNER, sealed).is_none());
                let state = if key.alg == "HS256" {
                    match key.drop_after {
                        Some(until) if until > now => {
                            format!("tokens signed with the secret verify until {}", format(until))
                        }
                        _ => "tokens signed with the secret no longer verify".to_owned(),
                    }
                } else if key.drop_after.is_some_and(|until| until <= now) {
                    "dropped (deleted at the next housekeeping)".to_owned()
                } else if key.signs_from > now {
                    format!("published; signs from {}", format(key.signs_from))
                } else if key.retired_at.is_none_or(|retired| retired > now) {
                    format!("signing since {}", format(key.signs_from))
                } else {
                    format!(
                        "retired {}; published until {}",
                        key.retired_at.map(format).unwrap_or_default(),
                        key.drop_after.map(format).unwrap_or_else(|| "…".to_owned())
                    )
                };
                let state =
                    if unreadable { format!("{state} (sealed under another secret: verifies only)") } else { state };
                let alg = match purpose_of(&key) {
                    KeyPurpose::Access => key.alg,
                    KeyPurpose::Id => format!("{} (ID tokens)", key.alg),
                };
                KeyState { kid: key.kid, alg, state }
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::keys::jwk;

    #[test]
    fn generated_keys_publish_only_public_parts_under_their_thumbprint() {
        for alg in [JwtAlgorithm::EdDsa, JwtAlgorithm::Es256, JwtAlgorithm::Rs256] {
            let (pkcs8, public) = generate(alg).unwrap();
            let key = LoadedKey {
                purpose: KeyPurpose::Id,
                kid: thumbprint(alg, &public).unwrap(),
                alg,
                private_pkcs8: Some(pkcs8),
                public,
                published_at: 0,
                signs_from: 0,
                retired_at: None,
                drop_after: None,
            };
            let jwk = jwk(&key).unwrap();
            assert_eq!(jwk["kid"], key.kid.as_str());
            assert_eq!(jwk["use"], "sig");
            assert!(jwk.get("d").is_none(), "no private part: {jwk}");
            assert_eq!(key.kid.len(), 43, "a SHA-256 in base64url");
        }
    }

    #[test]
    fn the_ed25519_thumbprint_matches_rfc_8037() {
        // RFC 8037, appendix A.3.
        let public = URL_SAFE_NO_PAD.decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo").unwrap();
        assert_eq!(thumbprint(JwtAlgorithm::EdDsa, &public).unwrap(), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
    }
}
