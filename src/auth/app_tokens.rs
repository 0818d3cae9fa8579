//! What an app's access token says (RFC 9068 §2.2): beside `tokens::Claims` (ours), the
//! claims of the tokens the OpenID Connect provider issues to apps, checked by
//! `Sessions::authenticate_app` in memory (signature, audience, the revoked list).
use serde::{Deserialize, Serialize};

use super::tokens::IssuedAt;
use super::verified_tokens::Expires;

/// The key on the renewal list that outdates every access token issued to an app before a
/// moment (the app was disabled or its settings changed).
pub fn app_tokens_key(client_id: &str) -> String {
    format!("client:{client_id}")
}

/// What an app's access token says, and what userinfo answers from it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AppAccessClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub client_id: String,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    pub scope: String,
    /// The grant this token belongs to (the revoked list knows it).
    pub gid: String,
    /// The session it came from, as the app's ID tokens name it (`None`: the app's own token,
    /// `client_credentials`). On the revoked list once that session ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
    #[serde(flatten)]
    pub user: UserClaims,
}

/// The user's claims an app's scopes allow (OpenID Connect Core 5.1, 5.4).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct UserClaims {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zoneinfo: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<String>>,
}

impl IssuedAt for AppAccessClaims {
    fn issued_at(&self) -> i64 {
        self.iat
    }
}

impl Expires for AppAccessClaims {
    fn expires_at(&self) -> i64 {
        self.exp
    }
}

/// OpenID Connect Core 5.3's answer: `sub` and the claims the token's scopes allowed when it
/// was issued, taken from the token itself (no database).
#[derive(Serialize)]
pub struct Userinfo<'a> {
    pub sub: &'a str,
    #[serde(flatten)]
    pub user: &'a UserClaims,
}

impl AppAccessClaims {
    /// What userinfo answers for this token: `None` when it was not issued for OpenID Connect
    /// (no `openid` scope).
    pub fn userinfo(&self) -> Option<Userinfo<'_>> {
        self.scope
            .split_whitespace()
            .any(|scope| scope == "openid")
            .then_some(Userinfo { sub: &self.sub, user: &self.user })
    }
}
