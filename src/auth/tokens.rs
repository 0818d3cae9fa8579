//! Access tokens: JWTs signed with EdDSA, ES256 or HS256, with the algorithm pinned per key,
//! and pinned type, issuer and audience (RFC 8725).
use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub use super::keys::{KeyPurpose, LoadedKey};
use crate::config::{JwtAlgorithm, JwtSecret};
use crate::db::users::User;
use crate::domain::Role;

/// RFC 9068's media type for access tokens, so no other kind of token we sign can pass as one.
pub const ACCESS_TOKEN_TYPE: &str = "at+jwt";
/// What ID tokens say in `typ` (OpenID Connect Core leaves it to JWT's own `JWT`).
pub const ID_TOKEN_TYPE: &str = "JWT";
/// What logout tokens say in `typ` (OpenID Connect Back-Channel Logout 1.0 §2.4), so no other
/// token we sign can pass as one.
pub const LOGOUT_TOKEN_TYPE: &str = "logout+jwt";
pub const AUDIENCE: &str = "portcullis";
/// The audience of the twin token the sites behind the reverse proxy receive (the gate cookie):
/// the gate accepts it, our own pages and API refuse it, so a site that leaks or replays it
/// gains nothing on Portcullis itself.
pub const GATE_AUDIENCE: &str = "portcullis-gate";

/// Whom a token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// Our own pages and API (the host-only session cookie, Bearer tokens).
    Portcullis,
    /// The gate only (`/auth/verify`).
    Gate,
}

impl Audience {
    fn claim(self) -> &'static str {
        match self {
            Audience::Portcullis => AUDIENCE,
            Audience::Gate => GATE_AUDIENCE,
        }
    }
}
/// Clock skew tolerated on `exp`, `nbf` and `iat` (a token issued "in the future" by more than
/// this is refused: no clock of ours is that far ahead).
pub const LEEWAY: Duration = Duration::from_secs(10);
/// Real tokens are a few hundred bytes; anything far bigger is refused before parsing.
const MAX_TOKEN_BYTES: usize = 4096;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    /// The user id, as a string (RFC 7519 `sub` is a string).
    pub sub: String,
    /// The username and display name when the token was issued (refreshed on renewal).
    pub preferred_username: String,
    pub name: String,
    /// The e-mail address when the token was issued (OpenID's `email`; for the sites behind
    /// the reverse proxy, `Remote-Email`). Absent in tokens from before it was added.
    #[serde(default)]
    pub email: String,
    pub role: Role,
    /// Set while the user must choose a new password: the guard then allows nothing else.
    pub pwc: bool,
    /// Set while the second-factor policy covers the user and they have none: the guard then
    /// allows nothing but enrolling one. (Absent in tokens from before second factors.)
    #[serde(default)]
    pub mfe: bool,
    /// How the user signed in (RFC 8176): `pwd`, then `otp` and `mfa` after a second factor.
    #[serde(default)]
    pub amr: Vec<String>,
    /// When the person last proved who they are in this session (OpenID's `auth_time`):
    /// changes that control sign-in need it recent. Absent (0) in tokens from before.
    #[serde(default)]
    pub auth_time: i64,
    /// The user's time zone (OpenID's `zoneinfo`), for the times pages show; UTC when absent.
    #[serde(default)]
    pub zoneinfo: String,
    /// The groups the user is in (names, in name order; at most [`MAX_TOKEN_GROUPS`] and
    /// [`MAX_TOKEN_GROUP_BYTES`] of names, the rest left out and `groups_truncated` set).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub groups_truncated: bool,
    /// The login session this token belongs to: checked against the revoked list, kept
    /// across renewals, anchors the CSRF token.
    pub sid: String,
    pub jti: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub iss: String,
    pub aud: String,
}

impl Claims {
    pub fn user_id(&self) -> Option<i64> {
        self.sub.parse().ok()
    }
}

/// What a token says about its session, beside the user.
#[derive(Debug, Clone, Copy)]
pub struct Grant<'a> {
    pub session_id: &'a str,
    /// Unix time.
    pub session_expires_at: i64,
    /// Space-separated RFC 8176 values, as the session keeps them.
    pub amr: &'a str,
    /// Unix time: when the person last proved who they are in this session.
    pub auth_time: i64,
    pub must_enrol: bool,
    /// The user's groups, in name order (bounded here).
    pub groups: &'a [String],
    /// The earliest `iat` the token may carry (after a renewal of the session, the second
    /// after the change: see `revocation::renewed_tokens_from`).
    pub issued_from: Option<i64>,
}

/// The most groups a token names: it travels in a cookie (4 KiB in all), so a user in very
/// many groups gets a token that names the first of them and says it left some out.
pub const MAX_TOKEN_GROUPS: usize = 64;
/// The most bytes of group names a token carries (names are 1–64 bytes each).
pub const MAX_TOKEN_GROUP_BYTES: usize = 1536;

/// The groups a token names, and whether some were left out.
fn bounded_groups(groups: &[String]) -> (Vec<String>, bool) {
    let mut kept = Vec::new();
    let mut bytes = 0;
    for name in groups {
        if kept.len() == MAX_TOKEN_GROUPS || bytes + name.len() > MAX_TOKEN_GROUP_BYTES {
            return (kept, true);
        }
        bytes += name.len();
        kept.push(name.clone());
    }
    (kept, false)
}

pub struct IssuedToken {
    pub token: String,
    pub claims: Claims,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid")]
    Invalid,
}

/// Claims that say when they were issued (`iat`): nothing issued in the future passes.
pub trait IssuedAt {
    fn issued_at(&self) -> i64;
}

/// No key of this instance can sign ID tokens with the algorithm an app asked for (none made
/// yet, or made by another instance since the last reload).
#[derive(Debug, thiserror::Error)]
#[error("no key signs ID tokens with {0} here yet")]
pub struct NoIdTokenKey(pub &'static str);

/// A key tokens may name in `kid`: its algorithm is pinned (RFC 8725 §3.1), so a token
/// claiming any other `alg` for it is refused.
struct NamedKey {
    kid: String,
    alg: Algorithm,
    /// `None`: verifies only (a retired key, or one sealed under a secret we no longer have).
    encoding: Option<Signer>,
    decoding: DecodingKey,
    validation: Validation,
    /// The same, any audience: for tokens issued to the apps (their audience is the app).
    any_audience: Validation,
}

/// A public key as the ring holds it, with when it signs and when it goes.
struct PublicKey {
    key: NamedKey,
    purpose: KeyPurpose,
    jwk: serde_json::Value,
    published_at: i64,
    signs_from: i64,
    retired_at: Option<i64>,
    drop_after: Option<i64>,
}

impl PublicKey {
    /// Whether tokens may name it at `now` (Unix time): published, and not yet dropped.
    fn verifies_at(&self, now: i64) -> bool {
        self.published_at <= now && self.drop_after.is_none_or(|until| until > now)
    }
}

/// The shared keys as last read from the database (`JwtKeys::replace_keys`).
#[derive(Default)]
struct Ring {
    public: Vec<PublicKey>,
    /// After a switch from HS256: until when tokens signed with the secret still verify.
    secret_tokens_until: Option<i64>,
    /// What the keys say about verifying, to notice a change (a key dropped early).
    fingerprint: Vec<(String, Option<i64>, Option<i64>)>,
}

/// Signing and checking keys. With EdDSA or ES256 tokens are signed by the ring's current key
/// (read from the database, shared by every instance, replaced at each reload); with HS256 by
/// the secret, the previous secret (during a rotation) verifying only. Every token names its
/// key in `kid`, and a token naming any other key is refused.
pub struct JwtKeys {
    algorithm: JwtAlgorithm,
    /// The secret's key, then the previous secret's.
    secret: Vec<NamedKey>,
    ring: std::sync::RwLock<std::sync::Arc<Ring>>,
    issuer: String,
    ttl: Duration,
}

fn jose_algorithm(algorithm: JwtAlgorithm) -> Option<Algorithm> {
    match algorithm {
        JwtAlgorithm::EdDsa => Some(Algorithm::EdDSA),
        JwtAlgorithm::Es256 => Some(Algorithm::ES256),
        JwtAlgorithm::Rs256 => Some(Algorithm::RS256),
        JwtAlgorithm::Hs256 => None,
    }
}

fn any_audience(alg: Algorithm, issuer: &str) -> Validation {
    let mut validation = validation(alg, issuer);
    validation.validate_aud = false;
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    validation
}

fn validation(alg: Algorithm, issuer: &str) -> Validation {
    let mut validation = Validation::new(alg);
    validation.algorithms = vec![alg];
    validation.leeway = LEEWAY.as_secs();
    validation.validate_exp = true;
    validation.validate_nbf = true;
    validation.set_issuer(&[issuer]);
    // Either audience passes here; `verify` then requires the one the caller asked for.
    validation.set_audience(&[AUDIENCE, GATE_AUDIENCE]);
    validation.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "aud", "sub"]);
    validation
}

impl JwtKeys {
    pub fn new(
        algorithm: JwtAlgorithm,
        secret: &JwtSecret,
        previous: Option<&JwtSecret>,
        issuer: &str,
        ttl: Duration,
    ) -> Self {
        let secret = std::iter::once(secret)
            .chain(previous)
            .enumerate()
            .map(|(index, secret)| NamedKey {
                kid: key_id(secret),
                alg: Algorithm::HS256,
                encoding: (index == 0).then(|| {
                    Signer::Hmac(Box::new(aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret.expose())))
                }),
                decoding: DecodingKey::from_secret(secret.expose()),
                validation: validation(Algorithm::HS256, issuer),
                any_audience: any_audience(Algorithm::HS256, issuer),
            })
            .collect();
        Self { algorithm, secret, ring: Default::default(), issuer: issuer.to_owned(), ttl }
    }

    /// What tokens name in `iss`: the public URL's origin.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Puts the keys just read from the database in place (at start-up, then at each reload).
    /// True when what verifies has changed (so tokens verified before must be checked again).
    pub fn replace_keys(&self, keys: Vec<LoadedKey>) -> bool {
        let mut ring = Ring {
            fingerprint: keys.iter().map(|key| (key.kid.clone(), key.retired_at, key.drop_after)).collect(),
            ..Ring::default()
        };
        for loaded in keys {
            let Some(alg) = jose_algorithm(loaded.alg) else {
                ring.secret_tokens_until = ring.secret_tokens_until.max(loaded.drop_after);
                continue;
            };
            let Some(jwk) = super::keys::jwk(&loaded) else { continue };
            let encoding = loaded.private_pkcs8.as_deref().and_then(|pkcs8| Signer::from_pkcs8(loaded.alg, pkcs8));
            let decoding = match loaded.alg {
                JwtAlgorithm::EdDsa => DecodingKey::from_ed_der(&loaded.public),
                JwtAlgorithm::Rs256 => DecodingKey::from_rsa_der(&loaded.public),
                _ => DecodingKey::from_ec_der(&loaded.public),
            };
            ring.public.push(PublicKey {
                purpose: loaded.purpose,
                key: NamedKey {
                    kid: loaded.kid,
                    alg,
                    encoding,
                    decoding,
                    validation: validation(alg, &self.issuer),
                    any_audience: any_audience(alg, &self.issuer),
                },
                jwk,
                published_at: loaded.published_at,
                signs_from: loaded.signs_from,
                retired_at: loaded.retired_at,
                drop_after: loaded.drop_after,
            });
        }
        let mut current = self.ring.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        let changed = current.fingerprint != ring.fingerprint;
        *current = std::sync::Arc::new(ring);
        changed
    }

    fn ring(&self) -> std::sync::Arc<Ring> {
        std::sync::Arc::clone(&self.ring.read().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// The public keys verifiers may use now (the JWKS): published, not yet dropped.
    pub fn published(&self) -> Vec<serde_json::Value> {
        let now = chrono::Utc::now().timestamp();
        self.ring().public.iter().filter(|key| key.verifies_at(now)).map(|key| key.jwk.clone()).collect()
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// An access token for `user` in a session, valid for the configured lifetime but never
    /// past the session's end.
    pub fn issue(&self, user: &User, grant: &Grant<'_>) -> anyhow::Result<IssuedToken> {
        let Grant { session_id, session_expires_at, amr, auth_time, must_enrol, groups, issued_from } = *grant;
        let now = chrono::Utc::now().timestamp().max(issued_from.unwrap_or(i64::MIN));
        let (groups, groups_truncated) = bounded_groups(groups);
        let claims = Claims {
            sub: user.id.to_string(),
            preferred_username: user.username.to_string(),
            name: user.display_name.clone(),
            email: user.email.to_string(),
            role: user.role,
            pwc: user.must_change_password,
            mfe: must_enrol,
            amr: amr.split_whitespace().map(str::to_owned).collect(),
            auth_time,
            zoneinfo: user.time_zone.name().to_owned(),
            groups,
            groups_truncated,
            sid: session_id.to_owned(),
            jti: crate::random::token_base64(16),
            iat: now,
            nbf: now,
            exp: (now + i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX / 2)).min(session_expires_at),
            iss: self.issuer.clone(),
            aud: AUDIENCE.to_owned(),
        };
        let token = self.sign(&claims)?;
        Ok(IssuedToken { token, claims })
    }

    /// The gate's twin of an access token: the same claims for the same session and time,
    /// its own `jti` and the gate's audience.
    pub fn gate_twin(&self, access: &Claims) -> anyhow::Result<String> {
        let twin = Claims { aud: GATE_AUDIENCE.to_owned(), jti: crate::random::token_base64(16), ..access.clone() };
        self.sign(&twin)
    }

    fn sign(&self, claims: &Claims) -> anyhow::Result<String> {
        self.sign_access(claims)
    }

    /// An access token with any claims (ours, or an app's: RFC 9068), signed by the key that
    /// signs access tokens now.
    pub fn sign_access<T: Serialize>(&self, claims: &T) -> anyhow::Result<String> {
        let now = chrono::Utc::now().timestamp();
        let ring = self.ring();
        let signer = if self.algorithm == JwtAlgorithm::Hs256 {
            self.secret.first()
        } else {
            ring.signer(KeyPurpose::Access, self.algorithm, now)
        };
        let signer = signer.ok_or_else(|| anyhow::anyhow!("no key can sign {} tokens now", self.algorithm.name()))?;
        signed(signer, ACCESS_TOKEN_TYPE, claims)
    }

    /// An ID token (OpenID Connect Core 2) signed with `alg` by the ID-token key of that
    /// algorithm; `NoIdTokenKey` when this instance has none yet (the caller makes one and reloads).
    pub fn sign_id_token<T: Serialize>(&self, alg: JwtAlgorithm, claims: &T) -> anyhow::Result<String> {
        self.sign_with_id_key(alg, ID_TOKEN_TYPE, claims)
    }

    /// A logout token (OpenID Connect Back-Channel Logout 1.0 §2.4), signed like the app's ID
    /// tokens; `NoIdTokenKey` as for those.
    pub fn sign_logout_token<T: Serialize>(&self, alg: JwtAlgorithm, claims: &T) -> anyhow::Result<String> {
        self.sign_with_id_key(alg, LOGOUT_TOKEN_TYPE, claims)
    }

    fn sign_with_id_key<T: Serialize>(&self, alg: JwtAlgorithm, typ: &str, claims: &T) -> anyhow::Result<String> {
        let now = chrono::Utc::now().timestamp();
        let ring = self.ring();
        let signer = ring.signer(KeyPurpose::Id, alg, now).ok_or(NoIdTokenKey(alg.name()))?;
        signed(signer, typ, claims)
    }

    /// An access token issued to an app (RFC 9068: `at+jwt`, our issuer, signed by one of our
    /// access keys), whatever its audience; the caller checks the audience and the claims.
    pub fn verify_app_token<T: DeserializeOwned + IssuedAt>(&self, token: &str) -> Result<T, TokenError> {
        self.verify_app_token_until(token).map(|(claims, _)| claims)
    }

    /// [`verify_app_token`](Self::verify_app_token), and until when its key verifies.
    pub fn verify_app_token_until<T: DeserializeOwned + IssuedAt>(
        &self,
        token: &str,
    ) -> Result<(T, Option<i64>), TokenError> {
        let kid = self.kid_of(token)?;
        let now = chrono::Utc::now().timestamp();
        let ring = self.ring();
        let (key, until) = match ring.verifier(KeyPurpose::Access, &kid, now) {
            Some(public) => (&public.key, public.drop_after),
            None if self.algorithm == JwtAlgorithm::Hs256 => {
                (self.secret.iter().find(|key| key.kid == kid).ok_or(TokenError::Invalid)?, None)
            }
            None => return Err(TokenError::Invalid),
        };
        Ok((checked::<T>(token, key, &key.any_audience, ACCESS_TOKEN_TYPE, now, T::issued_at)?, until))
    }

    /// An ID token we issued (signature, issuer, type), expired or not: what `id_token_hint`
    /// names.
    pub fn verify_id_token<T: DeserializeOwned + IssuedAt>(&self, token: &str) -> Result<T, TokenError> {
        let kid = self.kid_of(token)?;
        let now = chrono::Utc::now().timestamp();
        let ring = self.ring();
        let key = ring.verifier(KeyPurpose::Id, &kid, now).ok_or(TokenError::Invalid)?;
        let mut validation = key.key.any_audience.clone();
        validation.validate_exp = false;
        checked::<T>(token, &key.key, &validation, ID_TOKEN_TYPE, now, T::issued_at)
    }

    fn kid_of(&self, token: &str) -> Result<String, TokenError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::Invalid);
        }
        jsonwebtoken::decode_header(token).map_err(|_| TokenError::Invalid)?.kid.ok_or(TokenError::Invalid)
    }

    /// Every failure is just "invalid" (or "expired"): callers answer 401 alike. A token for
    /// another audience than `audience` is invalid.
    pub fn verify(&self, token: &str, audience: Audience) -> Result<Claims, TokenError> {
        self.verify_until(token, audience).map(|(claims, _)| claims)
    }

    /// [`verify`](Self::verify), and until when (Unix time) the key that verified the token
    /// still verifies (`None`: for as long as it is configured): a memo of verified tokens must
    /// not outlive their key.
    pub fn verify_until(&self, token: &str, audience: Audience) -> Result<(Claims, Option<i64>), TokenError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::Invalid);
        }
        // The header is read before the signature is checked only to pick the key; a `kid` we
        // did not issue (a path, SQL, a URL) matches nothing and is refused without further use.
        let kid =
            jsonwebtoken::decode_header(token).map_err(|_| TokenError::Invalid)?.kid.ok_or(TokenError::Invalid)?;
        let now = chrono::Utc::now().timestamp();
        let ring = self.ring();
        let public = ring.verifier(KeyPurpose::Access, &kid, now);
        let secret_allowed =
            self.algorithm == JwtAlgorithm::Hs256 || ring.secret_tokens_until.is_some_and(|until| until > now);
        let (key, until) = match public {
            Some(public) => (&public.key, public.drop_after),
            None => {
                let secret = self.secret.iter().find(|key| key.kid == kid).filter(|_| secret_allowed);
                let until = if self.algorithm == JwtAlgorithm::Hs256 { None } else { ring.secret_tokens_until };
                (secret.ok_or(TokenError::Invalid)?, until)
            }
        };
        let claims: Claims =
            checked(token, key, &key.validation, ACCESS_TOKEN_TYPE, now, |claims: &Claims| claims.iat)?;
        if claims.user_id().is_none() || claims.aud != audience.claim() {
            return Err(TokenError::Invalid);
        }
        Ok((claims, until))
    }
}

impl Ring {
    /// The published key of `purpose` that tokens naming `kid` are checked with at `now`.
    fn verifier(&self, purpose: KeyPurpose, kid: &str, now: i64) -> Option<&PublicKey> {
        self.public.iter().find(|key| key.purpose == purpose && key.key.kid == kid && key.verifies_at(now))
    }

    /// The newest key of `purpose` and `alg` that has begun and not stopped signing.
    fn signer(&self, purpose: KeyPurpose, alg: JwtAlgorithm, now: i64) -> Option<&NamedKey> {
        self.public
            .iter()
            .filter(|key| key.purpose == purpose && Some(key.key.alg) == jose_algorithm(alg))
            .filter(|key| {
                key.key.encoding.is_some() && key.signs_from <= now && key.retired_at.is_none_or(|at| at > now)
            })
            .max_by_key(|key| key.signs_from)
            .map(|key| &key.key)
    }
}

/// A private key parsed once (the JWT library would parse it again for every token: for
/// Ed25519 that is most of the cost of signing, for RSA far more than all of it).
enum Signer {
    Ed(aws_lc_rs::signature::Ed25519KeyPair),
    Ec(aws_lc_rs::signature::EcdsaKeyPair),
    Rsa(aws_lc_rs::signature::RsaKeyPair),
    Hmac(Box<aws_lc_rs::hmac::Key>),
}

impl Signer {
    fn from_pkcs8(alg: JwtAlgorithm, pkcs8: &[u8]) -> Option<Self> {
        use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, RsaKeyPair};
        match alg {
            JwtAlgorithm::EdDsa => Ed25519KeyPair::from_pkcs8(pkcs8).ok().map(Self::Ed),
            JwtAlgorithm::Es256 => EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8).ok().map(Self::Ec),
            JwtAlgorithm::Rs256 => RsaKeyPair::from_pkcs8(pkcs8).ok().map(Self::Rsa),
            JwtAlgorithm::Hs256 => None,
        }
    }

    fn sign(&self, input: &[u8]) -> anyhow::Result<Vec<u8>> {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        Ok(match self {
            Self::Ed(pair) => pair.sign(input).as_ref().to_vec(),
            Self::Ec(pair) => {
                pair.sign(&rng, input).map_err(|_| anyhow::anyhow!("ES256 signing failed"))?.as_ref().to_vec()
            }
            Self::Rsa(pair) => {
                let mut signature = vec![0; pair.public_modulus_len()];
                pair.sign(&aws_lc_rs::signature::RSA_PKCS1_SHA256, &rng, input, &mut signature)
                    .map_err(|_| anyhow::anyhow!("RS256 signing failed"))?;
                signature
            }
            Self::Hmac(key) => aws_lc_rs::hmac::sign(key, input).as_ref().to_vec(),
        })
    }
}

/// A JWS in compact form (RFC 7515): the header naming `typ`, `alg` and `kid`, the claims, the
/// signature.
fn signed<T: Serialize>(signer: &NamedKey, typ: &str, claims: &T) -> anyhow::Result<String> {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let encoding = signer.encoding.as_ref().ok_or_else(|| anyhow::anyhow!("the signing key has no private half"))?;
    let alg = match signer.alg {
        Algorithm::EdDSA => "EdDSA",
        Algorithm::ES256 => "ES256",
        Algorithm::RS256 => "RS256",
        Algorithm::HS256 => "HS256",
        other => anyhow::bail!("we do not sign with {other:?}"),
    };
    let header = serde_json::json!({"typ": typ, "alg": alg, "kid": signer.kid});
    let mut token = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header)?);
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims)?));
    let signature = encoding.sign(token.as_bytes())?;
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(signature));
    Ok(if signer.alg == Algorithm::ES256 { low_s::normalise(&token) } else { token })
}

/// The checks every token of ours passes, whatever it is for: one spelling of an ES256
/// signature, the signature and `validation`, the pinned `typ`, no keys or URLs in the header,
/// nothing issued in the future.
fn checked<T: DeserializeOwned>(
    token: &str,
    key: &NamedKey,
    validation: &Validation,
    typ: &str,
    now: i64,
    issued_at: impl Fn(&T) -> i64,
) -> Result<T, TokenError> {
    // An ECDSA signature has a twin (s and n − s) that verifies too: only the low one is ours.
    if key.alg == Algorithm::ES256 && !low_s::is_low(token) {
        return Err(TokenError::Invalid);
    }
    let data = decode::<T>(token, &key.decoding, validation).map_err(|error| match error.kind() {
        jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
        _ => TokenError::Invalid,
    })?;
    let header = &data.header;
    let unexpected_header = header.alg != key.alg
        || header.typ.as_deref() != Some(typ)
        || header.jku.is_some()
        || header.jwk.is_some()
        || header.x5u.is_some()
        || header.x5c.is_some()
        || header.crit.is_some();
    if unexpected_header || issued_at(&data.claims) > now + i64::try_from(LEEWAY.as_secs()).unwrap_or(0) {
        return Err(TokenError::Invalid);
    }
    Ok(data.claims)
}

/// ES256 signatures in low-S form only (as Bitcoin and Ethereum require): `r ‖ s` with
/// `s ≤ n/2`, so no second spelling of a token of ours verifies.
mod low_s {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    /// The order of P-256's group, big-endian.
    const N: [u8; 32] = [
        0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xbc, 0xe6,
        0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
    ];
    /// ⌊n / 2⌋, big-endian.
    const HALF_N: [u8; 32] = [
        0x7f, 0xff, 0xff, 0xff, 0x80, 0x00, 0x00, 0x00, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xde, 0x73,
        0x7d, 0x56, 0xd3, 0x8b, 0xcf, 0x42, 0x79, 0xdc, 0xe5, 0x61, 0x7e, 0x31, 0x92, 0xa8,
    ];

    fn signature(token: &str) -> Option<(&str, Vec<u8>)> {
        let (input, signature) = token.rsplit_once('.')?;
        let bytes = URL_SAFE_NO_PAD.decode(signature).ok()?;
        (bytes.len() == 64).then_some((input, bytes))
    }

    /// Whether the token's signature is 64 bytes with a low `s` (a malformed one is not).
    pub(super) fn is_low(token: &str) -> bool {
        signature(token).is_some_and(|(_, bytes)| bytes[32..] <= HALF_N[..])
    }

    /// The token with its signature's `s` replaced by `n − s` when high (the same signature).
    pub(super) fn normalise(token: &str) -> String {
        let Some((input, mut bytes)) = signature(token) else { return token.to_owned() };
        if bytes[32..] <= HALF_N[..] {
            return token.to_owned();
        }
        let mut borrow = 0i16;
        for at in (0..32).rev() {
            let difference = i16::from(N[at]) - i16::from(bytes[32 + at]) - borrow;
            borrow = i16::from(difference < 0);
            bytes[32 + at] = u8::try_from(difference.rem_euclid(256)).unwrap_or(0);
        }
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(bytes))
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn a_high_s_becomes_its_low_twin_and_back() {
            let mut bytes = vec![7u8; 32];
            bytes.extend_from_slice(&N);
            bytes[63] -= 1; // s = n − 1: high; its twin is 1
            let token = format!("a.b.{}", URL_SAFE_NO_PAD.encode(&bytes));
            assert!(!is_low(&token));
            let low = normalise(&token);
            assert!(is_low(&low));
            let twin = URL_SAFE_NO_PAD.decode(low.rsplit_once('.').unwrap().1).unwrap();
            assert_eq!(&twin[..32], &[7u8; 32]);
            assert_eq!(twin[32..63], [0u8; 31]);
            assert_eq!(twin[63], 1);
            assert_eq!(normalise(&low), low, "a low s stays");
            assert!(!is_low("a.b.c"), "not a signature");
        }
    }
}

/// A public name for a secret: 72 bits of a keyed hash of it, so the `kid` says which secret
/// signed a token without revealing anything about the secret.
fn key_id(secret: &JwtSecret) -> String {
    use aws_lc_rs::hmac;
    use base64::Engine;
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, secret.expose()), b"portcullis key id v1");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&tag.as_ref()[..9])
}
