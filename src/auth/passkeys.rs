//! Passkeys (WebAuthn) through `webauthn-rs`: registration, the second step of a sign-in, and
//! sign-in without a password (discoverable credentials). Nothing here parses CBOR or checks a
//! signature itself.
//!
//! A ceremony's state (its challenge) travels sealed (AES-256-GCM, see `sealed.rs`) inside the
//! token handed to the page, together with what it is for, whom, what it is bound to (the
//! session, the pending sign-in, the login form's nonce) and when it expires (5 minutes). A
//! page that starts a ceremony and abandons it leaves nothing behind; a completed ceremony is
//! remembered until it expires, so none completes twice. User verification (PIN, biometrics)
//! is always required: a passkey sign-in is two factors.
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use webauthn_rs::prelude::{
    DiscoverableAuthentication, DiscoverableKey, Passkey, PasskeyAuthentication, PasskeyRegistration,
    PublicKeyCredential, RegisterPublicKeyCredential, Url, Uuid, Webauthn, WebauthnBuilder, WebauthnError,
};

use crate::config::{JwtSecret, PublicUrl};
use crate::crypto::sealed::SealingKey;
use crate::db::audit::{self, Action, Actor};
use crate::db::passkeys::{self, PasskeyRow};
use crate::db::users::{self, User, now};
use crate::db::{self, DbPool};

pub const CEREMONY_TTL: Duration = Duration::from_secs(5 * 60);
/// Longer than any token we hand out; bigger ones are refused before any work.
const MAX_TOKEN_CHARS: usize = 8 * 1024;

/// What a ceremony is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    Register,
    SecondStep,
    SignIn,
}

#[derive(Serialize, Deserialize)]
enum State {
    Register { registration: PasskeyRegistration, handle: Uuid },
    SecondStep(PasskeyAuthentication),
    SignIn(DiscoverableAuthentication),
}

/// What the sealed token carries.
#[derive(Serialize, Deserialize)]
struct Sealed {
    purpose: Purpose,
    user_id: Option<i64>,
    bound_to: String,
    /// Unix time.
    expires_at: i64,
    state: State,
}

impl Sealed {
    /// Whether this ceremony may complete `purpose` for `bound_to` at Unix time `now`.
    fn serves(&self, purpose: Purpose, bound_to: &str, now: i64) -> bool {
        self.purpose == purpose && self.bound_to == bound_to && now < self.expires_at
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PasskeyError {
    #[error("this passkey request has expired or was already used; start again")]
    Expired,
    #[error("this passkey is not registered here, or not for this account (it may have been removed)")]
    Unknown,
    #[error("this passkey is registered already")]
    Duplicate,
    #[error("the passkey did not confirm it is you (PIN, fingerprint or face); try again and confirm when asked")]
    NoUserVerification,
    #[error("this passkey's signature counter went backwards, a sign that it may have been copied; it was refused")]
    PossibleClone,
    #[error("the passkey's answer was not accepted: {0}")]
    Rejected(String),
    #[error("{0}")]
    Unavailable(&'static str),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// One passkey sign-in, verified and recorded.
pub struct PasskeyUse {
    pub user: User,
    pub passkey_name: String,
    /// `hwk` (a key kept in hardware) or `swk` (a synced, backed-up key), for `amr`.
    pub key_kind: &'static str,
}

/// A registration, verified: ready to be stored by `accounts`.
pub struct NewCredential {
    pub credential_id: String,
    pub user_handle: String,
    pub passkey_json: String,
}

pub struct Passkeys {
    /// `None` when the public URL cannot name a WebAuthn relying party (an IP address).
    webauthn: Option<Webauthn>,
    sealing: SealingKey,
}

/// Why passkeys are off on an installation reached by an IP address.
pub const NEEDS_A_DOMAIN: &str = "Passkeys need Portcullis to be reached by a domain name (browsers refuse them on an \
                                  IP address): set PORTCULLIS_PUBLIC_URL, for example to http://localhost:8080";

fn explain(error: WebauthnError) -> PasskeyError {
    match error {
        WebauthnError::CredentialPossibleCompromise => PasskeyError::PossibleClone,
        WebauthnError::UserNotVerified => PasskeyError::NoUserVerification,
        WebauthnError::InvalidRPOrigin => PasskeyError::Rejected(
            "it was made for another site address (its origin is not PORTCULLIS_PUBLIC_URL)".to_owned(),
        ),
        WebauthnError::InvalidRPIDHash => {
            PasskeyError::Rejected("it was made for another site (its relying-party id does not match)".to_owned())
        }
        WebauthnError::MismatchedChallenge => {
            PasskeyError::Rejected("it answers another request than this one".to_owned())
        }
        WebauthnError::CredentialAlteredAlgFromRequest | WebauthnError::CredentialExcludedFromRequest => {
            PasskeyError::Duplicate
        }
        other => PasskeyError::Rejected(format!("verification failed ({other})")),
    }
}

fn token_hash(token: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
    digest.as_ref().iter().map(|byte| format!("{byte:02x}")).collect()
}

impl Passkeys {
    /// The relying party is `PORTCULLIS_PUBLIC_URL`: its host is the rp id, itself the only
    /// origin accepted.
    pub fn new(public_url: &PublicUrl, secret: &JwtSecret, previous: Option<&JwtSecret>) -> anyhow::Result<Self> {
        let origin = Url::parse(public_url.origin())?;
        let by_address = public_url.host_name().parse::<std::net::IpAddr>().is_ok();
        let webauthn = if by_address {
            tracing::info!("passkeys are off: {NEEDS_A_DOMAIN}");
            None
        } else {
            Some(WebauthnBuilder::new(public_url.host_name(), &origin)?.rp_name("Portcullis").build()?)
        };
        Ok(Self { webauthn, sealing: SealingKey::derive(secret, previous, "portcullis passkey ceremony v1") })
    }

    /// Whether passkeys work on this installation (see `NEEDS_A_DOMAIN`).
    pub fn available(&self) -> bool {
        self.webauthn.is_some()
    }

    fn webauthn(&self) -> Result<&Webauthn, PasskeyError> {
        self.webauthn.as_ref().ok_or(PasskeyError::Unavailable(NEEDS_A_DOMAIN))
    }

    fn seal(&self, sealed: &Sealed) -> anyhow::Result<String> {
        Ok(self.sealing.seal(0, &serde_json::to_vec(sealed)?))
    }

    /// Opens a ceremony token and checks what it is for and bound to, then marks it used.
    async fn open(&self, pool: &DbPool, token: &str, purpose: Purpose, bound_to: &str) -> Result<Sealed, PasskeyError> {
        if token.is_empty() || token.len() > MAX_TOKEN_CHARS {
            return Err(PasskeyError::Expired);
        }
        let opened = self.sealing.open(0, token).ok_or(PasskeyError::Expired)?;
        let sealed: Sealed = serde_json::from_slice(&opened.plaintext).map_err(|_| PasskeyError::Expired)?;
        if !sealed.serves(purpose, bound_to, chrono::Utc::now().timestamp()) {
            return Err(PasskeyError::Expired);
        }
        let hash = token_hash(token);
        let expires_at = chrono::DateTime::from_timestamp(sealed.expires_at, 0)
            .map(|at| at.naive_utc())
            .ok_or(PasskeyError::Expired)?;
        let first = db::run(pool, move |conn| -> anyhow::Result<bool> {
            Ok(passkeys::mark_ceremony_used(conn, &hash, expires_at)?)
        })
        .await?;
        if !first {
            return Err(PasskeyError::Expired);
        }
        Ok(sealed)
    }

    fn start(&self, purpose: Purpose, user_id: Option<i64>, bound_to: &str, state: State) -> anyhow::Result<String> {
        let expires_at = chrono::Utc::now().timestamp() + i64::try_from(CEREMONY_TTL.as_secs())?;
        self.seal(&Sealed { purpose, user_id, bound_to: bound_to.to_owned(), expires_at, state })
    }

    /// Registration options for `user` (their existing passkeys excluded, a discoverable
    /// credential asked for), and the ceremony's token, bound to the session.
    pub async fn start_registration(
        &self,
        pool: &DbPool,
        user: &User,
        session_id: &str,
    ) -> Result<(String, serde_json::Value), PasskeyError> {
        let user_id = user.id;
        let existing =
            db::run(pool, move |conn| -> anyhow::Result<Vec<PasskeyRow>> { Ok(passkeys::of_user(conn, user_id)?) })
                .await?;
        let handle = existing
            .first()
            .and_then(|row| Uuid::parse_str(&row.user_handle).ok())
            .unwrap_or_else(|| Uuid::from_bytes(crate::random::bytes::<16>()));
        let exclude = existing
            .iter()
            .filter_map(|row| serde_json::from_str::<Passkey>(&row.passkey).ok())
            .map(|passkey| passkey.cred_id().clone())
            .collect::<Vec<_>>();
        let (options, registration) = self
            .webauthn()?
            .start_passkey_registration(handle, &user.username, &user.display_name, Some(exclude))
            .map_err(explain)?;
        let mut options = serde_json::to_value(options).map_err(anyhow::Error::from)?;
        // Ask for a discoverable credential, so the passkey can sign in without a username.
        if let Some(selection) =
            options.pointer_mut("/publicKey/authenticatorSelection").and_then(|v| v.as_object_mut())
        {
            selection.insert("residentKey".to_owned(), "required".into());
            selection.insert("requireResidentKey".to_owned(), true.into());
        }
        let token =
            self.start(Purpose::Register, Some(user.id), session_id, State::Register { registration, handle })?;
        Ok((token, options))
    }

    /// Verifies the browser's answer to a registration started by this session.
    pub async fn finish_registration(
        &self,
        pool: &DbPool,
        token: &str,
        user_id: i64,
        session_id: &str,
        credential: &RegisterPublicKeyCredential,
    ) -> Result<NewCredential, PasskeyError> {
        let sealed = self.open(pool, token, Purpose::Register, session_id).await?;
        let (State::Register { registration, handle }, Some(owner)) = (sealed.state, sealed.user_id) else {
            return Err(PasskeyError::Expired);
        };
        if owner != user_id {
            return Err(PasskeyError::Expired);
        }
        let passkey = self.webauthn()?.finish_passkey_registration(credential, &registration).map_err(explain)?;
        Ok(NewCredential {
            credential_id: URL_SAFE_NO_PAD.encode(passkey.cred_id().as_ref()),
            user_handle: handle.to_string(),
            passkey_json: serde_json::to_string(&passkey).map_err(anyhow::Error::from)?,
        })
    }

    /// Options to sign in with any passkey (the browser offers the ones it has for this site),
    /// bound to the login form's nonce.
    pub fn start_sign_in(&self, login_nonce: &str) -> Result<(String, serde_json::Value), PasskeyError> {
        let (options, state) = self.webauthn()?.start_discoverable_authentication().map_err(explain)?;
        let mut options = serde_json::to_value(options).map_err(anyhow::Error::from)?;
        // The page chooses: a button asks at once, the username field's autofill asks quietly.
        if let Some(object) = options.as_object_mut() {
            object.remove("mediation");
        }
        let token = self.start(Purpose::SignIn, None, &token_hash(login_nonce), State::SignIn(state))?;
        Ok((token, options))
    }

    /// Options for the second step of `user`'s pending sign-in (their passkeys only).
    pub async fn start_second_step(
        &self,
        pool: &DbPool,
        user: &User,
        pending_token: &str,
    ) -> Result<(String, serde_json::Value), PasskeyError> {
        let user_id = user.id;
        let rows =
            db::run(pool, move |conn| -> anyhow::Result<Vec<PasskeyRow>> { Ok(passkeys::of_user(conn, user_id)?) })
                .await?;
        let keys: Vec<Passkey> = rows.iter().filter_map(|row| serde_json::from_str(&row.passkey).ok()).collect();
        if keys.is_empty() {
            return Err(PasskeyError::Unknown);
        }
        let (options, state) = self.webauthn()?.start_passkey_authentication(&keys).map_err(explain)?;
        let token =
            self.start(Purpose::SecondStep, Some(user.id), &token_hash(pending_token), State::SecondStep(state))?;
        Ok((token, serde_json::to_value(options).map_err(anyhow::Error::from)?))
    }

    /// Verifies a sign-in answer (`Purpose::SignIn` bound to the login nonce, or
    /// `Purpose::SecondStep` bound to the pending sign-in) and records the passkey's use.
    pub async fn finish_authentication(
        &self,
        pool: &DbPool,
        token: &str,
        purpose: Purpose,
        binding: &str,
        credential: &PublicKeyCredential,
        client_ip: &str,
    ) -> Result<PasskeyUse, PasskeyError> {
        let webauthn = self.webauthn()?;
        let sealed = self.open(pool, token, purpose, &token_hash(binding)).await?;
        let credential_id = URL_SAFE_NO_PAD.encode(credential.get_credential_id());
        let lookup = credential_id.clone();
        let row = db::run(pool, move |conn| -> anyhow::Result<Option<PasskeyRow>> {
            Ok(passkeys::by_credential_id(conn, &lookup)?)
        })
        .await?
        .ok_or(PasskeyError::Unknown)?;
        let mut passkey: Passkey = serde_json::from_str(&row.passkey).map_err(anyhow::Error::from)?;
        let verified = match (sealed.state, sealed.user_id) {
            (State::SecondStep(state), Some(owner)) => {
                if owner != row.user_id {
                    return Err(PasskeyError::Unknown);
                }
                webauthn.finish_passkey_authentication(credential, &state)
            }
            (State::SignIn(state), None) => {
                let (handle, _) = webauthn.identify_discoverable_authentication(credential).map_err(explain)?;
                if handle.to_string() != row.user_handle {
                    return Err(PasskeyError::Unknown);
                }
                webauthn.finish_discoverable_authentication(credential, state, &[DiscoverableKey::from(&passkey)])
            }
            _ => return Err(PasskeyError::Expired),
        };
        let result = match verified {
            Ok(result) => result,
            Err(error) => {
                let refusal = explain(error);
                if matches!(refusal, PasskeyError::PossibleClone) {
                    let (user_id, name, ip) = (row.user_id, row.name.clone(), client_ip.to_owned());
                    db::run(pool, move |conn| -> anyhow::Result<()> {
                        let Some(user) = users::find_by_id(conn, user_id)? else { return Ok(()) };
                        let details = format!("passkey \"{name}\": its signature counter went backwards; refused");
                        let actor = Actor::anonymous(Some(ip));
                        Ok(audit::record(
                            conn,
                            &actor,
                            Action::PasskeyCloneWarning,
                            Some((user.id, &user.username)),
                            &details,
                        )?)
                    })
                    .await?;
                }
                return Err(refusal);
            }
        };
        if !result.user_verified() {
            return Err(PasskeyError::NoUserVerification);
        }
        let updated =
            passkey.update_credential(&result).filter(|changed| *changed).map(|_| serde_json::to_string(&passkey));
        let updated = updated.transpose().map_err(anyhow::Error::from)?;
        let (id, user_id) = (row.id, row.user_id);
        let user = db::run(pool, move |conn| -> anyhow::Result<Option<User>> {
            passkeys::record_use(conn, id, updated.as_deref(), now())?;
            Ok(users::find_by_id(conn, user_id)?.filter(|user| user.is_active))
        })
        .await?
        .ok_or(PasskeyError::Unknown)?;
        let key_kind = if result.backup_eligible() { "swk" } else { "hwk" };
        Ok(PasskeyUse { user, passkey_name: row.name, key_kind })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn passkeys() -> Passkeys {
        let secret = JwtSecret::parse(&crate::random::token_base64(48), "test").unwrap();
        Passkeys::new(&PublicUrl::parse("https://login.example.com").unwrap(), &secret, None).unwrap()
    }

    #[test]
    fn a_ceremony_serves_only_its_purpose_its_binding_and_its_five_minutes() {
        let keys = passkeys();
        let (token, options) = keys.start_sign_in("nonce").unwrap();
        assert_eq!(options["publicKey"]["rpId"], "login.example.com");
        assert!(options.get("mediation").is_none(), "the page chooses how to ask");
        let sealed: Sealed = serde_json::from_slice(&keys.sealing.open(0, &token).unwrap().plaintext).unwrap();
        let now = chrono::Utc::now().timestamp();
        let bound = token_hash("nonce");
        assert!(sealed.serves(Purpose::SignIn, &bound, now));
        assert!(sealed.serves(Purpose::SignIn, &bound, now + 299));
        assert!(!sealed.serves(Purpose::SignIn, &bound, now + 301), "expired after 5 minutes");
        assert!(!sealed.serves(Purpose::SecondStep, &bound, now), "another purpose");
        assert!(!sealed.serves(Purpose::SignIn, &token_hash("another nonce"), now), "another login form");
        assert!(!token.contains("challenge"), "the state is sealed, not readable");
    }

    #[test]
    fn an_installation_reached_by_an_ip_address_has_no_relying_party() {
        let secret = JwtSecret::parse(&crate::random::token_base64(48), "test").unwrap();
        let keys = Passkeys::new(&PublicUrl::parse("http://127.0.0.1:8080").unwrap(), &secret, None).unwrap();
        assert!(!keys.available());
        assert!(matches!(keys.start_sign_in("n"), Err(PasskeyError::Unavailable(_))));
    }
}
