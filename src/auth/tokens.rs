//! Access tokens: HS256 JWTs with pinned algorithm, type, issuer and audience (RFC 8725).
use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use serde::{Deserialize, Serialize};

use crate::config::JwtSecret;
use crate::db::users::User;
use crate::domain::Role;

/// RFC 9068's media type for access tokens, so no other kind of token we sign can pass as one.
pub const ACCESS_TOKEN_TYPE: &str = "at+jwt";
pub const AUDIENCE: &str = "portcullis";
/// Clock skew tolerated on `exp` and `nbf`.
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
    /// The user's time zone (OpenID's `zoneinfo`), for the times pages show; UTC when absent.
    #[serde(default)]
    pub zoneinfo: String,
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
    pub must_enrol: bool,
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

/// A verification key and the `kid` that names it.
struct VerificationKey {
    kid: String,
    decoding: DecodingKey,
}

/// Signing and checking keys, created once at start-up. Tokens are signed with the current
/// secret; the previous one (during a rotation) is accepted for verification only. Every token
/// names its key in `kid`, and a token naming any other key is refused.
pub struct JwtKeys {
    encoding: EncodingKey,
    current_kid: String,
    verification: Vec<VerificationKey>,
    validation: Validation,
    issuer: String,
    ttl: Duration,
}

impl JwtKeys {
    pub fn new(secret: &JwtSecret, previous: Option<&JwtSecret>, issuer: &str, ttl: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        validation.leeway = LEEWAY.as_secs();
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "aud", "sub"]);
        Self {
            encoding: EncodingKey::from_secret(secret.expose()),
            current_kid: key_id(secret),
            verification: std::iter::once(secret)
                .chain(previous)
                .map(|secret| VerificationKey {
                    kid: key_id(secret),
                    decoding: DecodingKey::from_secret(secret.expose()),
                })
                .collect(),
            validation,
            issuer: issuer.to_owned(),
            ttl,
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// An access token for `user` in a session, valid for the configured lifetime but never
    /// past the session's end.
    pub fn issue(&self, user: &User, grant: &Grant<'_>) -> anyhow::Result<IssuedToken> {
        let Grant { session_id, session_expires_at, amr, must_enrol } = *grant;
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: user.id.to_string(),
            preferred_username: user.username.to_string(),
            name: user.display_name.clone(),
            role: user.role,
            pwc: user.must_change_password,
            mfe: must_enrol,
            amr: amr.split_whitespace().map(str::to_owned).collect(),
            zoneinfo: user.time_zone.name().to_owned(),
            sid: session_id.to_owned(),
            jti: crate::random::token_base64(16),
            iat: now,
            nbf: now,
            exp: (now + i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX / 2)).min(session_expires_at),
            iss: self.issuer.clone(),
            aud: AUDIENCE.to_owned(),
        };
        let header = Header {
            typ: Some(ACCESS_TOKEN_TYPE.to_owned()),
            kid: Some(self.current_kid.clone()),
            ..Header::new(Algorithm::HS256)
        };
        let token = encode(&header, &claims, &self.encoding)?;
        Ok(IssuedToken { token, claims })
    }

    /// Every failure is just "invalid" (or "expired"): callers answer 401 alike.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::Invalid);
        }
        // The header is read before the signature is checked only to pick the key; a `kid` we
        // did not issue (a path, SQL, a URL) matches nothing and is refused without further use.
        let kid = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Invalid)?.kid;
        let key =
            self.verification.iter().find(|key| kid.as_deref() == Some(key.kid.as_str())).ok_or(TokenError::Invalid)?;
        let data = decode::<Claims>(token, &key.decoding, &self.validation).map_err(|error| match error.kind() {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
            _ => TokenError::Invalid,
        })?;
        let header = &data.header;
        let unexpected_header = header.typ.as_deref() != Some(ACCESS_TOKEN_TYPE)
            || header.jku.is_some()
            || header.jwk.is_some()
            || header.x5u.is_some()
            || header.x5c.is_some()
            || header.crit.is_some();
        if unexpected_header || data.claims.user_id().is_none() {
            return Err(TokenError::Invalid);
        }
        Ok(data.claims)
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
