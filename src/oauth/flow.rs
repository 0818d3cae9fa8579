//! The provider's flows: codes for a signed-in user (bound to the app, the redirect URI, the
//! PKCE challenge and the Portcullis session), the token endpoint's grants (code, refresh,
//! client credentials), revocation, introspection and userinfo.
//!
//! An app's access token (RFC 9068) names its grant (`gid`): revoking the grant (a reused code
//! or refresh token, the user disconnecting the app, the session it came from ending) puts the
//! `gid` on the revoked list, and disabling the app outdates every token issued to it, so each
//! check is in memory. Refresh tokens are rotated, each use checked against the database.
use std::time::Duration;

use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub use crate::auth::app_tokens::{AppAccessClaims, UserClaims};

use super::clients::{self, Client};
use super::scopes::Scopes;
use crate::auth::sessions::{AuthFailure, Sessions};
use crate::auth::throttle::LoginThrottle;
use crate::auth::tokens::NoIdTokenKey;
use crate::config::JwtAlgorithm;
use crate::db::audit::{self, Action, Actor};
use crate::db::oauth::{self as store, CodeRow, NewGrant};
use crate::db::users::{self, User, now};
use crate::db::{self, DbConnection, DbPool, write_transaction};

/// Codes live one minute (RFC 6749 §4.1.2 recommends at most ten).
pub const CODE_TTL: Duration = Duration::from_secs(60);
const SECRET_BYTES: usize = 32;
/// Live grants one session may hold with one app: signing in to it again ends the oldest
/// beyond these (as `MAX_SESSIONS_PER_USER` bounds sessions), so nobody grows the table.
pub const GRANTS_PER_SESSION: i64 = 20;
/// Longer than anything we issue; anything bigger is refused without a lookup.
const MAX_TOKEN_CHARS: usize = 4096;
/// RFC 7636 §4.1: 43 to 128 characters of the unreserved set.
const VERIFIER_CHARS: std::ops::RangeInclusive<usize> = 43..=128;

/// An error of the token, revocation or introspection endpoint (RFC 6749 §5.2), or one
/// returned to the app from the authorization endpoint (§4.1.2.1).
#[derive(Debug)]
pub struct OAuthError {
    pub error: &'static str,
    pub description: String,
    /// Wait this long (a throttled client).
    pub retry_after: Option<Duration>,
}

impl OAuthError {
    pub fn new(error: &'static str, description: impl Into<String>) -> Self {
        Self { error, description: description.into(), retry_after: None }
    }

    fn invalid_grant(description: &str) -> Self {
        Self::new("invalid_grant", description)
    }

    fn invalid_client() -> Self {
        Self::new("invalid_client", "The client is unknown, disabled, or its credentials are wrong")
    }

    pub fn server_error(error: &anyhow::Error) -> Self {
        tracing::error!(error = %format!("{error:#}"), "the OAuth request failed");
        Self::new("server_error", "Something went wrong here; try again in a moment")
    }

    /// Whether the app should authenticate with HTTP Basic next time (RFC 6749 §5.2: 401).
    pub fn is_client_error(&self) -> bool {
        self.error == "invalid_client"
    }
}

impl From<anyhow::Error> for OAuthError {
    fn from(error: anyhow::Error) -> Self {
        if crate::db::is_temporary(&error) {
            return Self {
                retry_after: Some(Duration::from_secs(1)),
                ..Self::new("temporarily_unavailable", "Try again in a moment")
            };
        }
        Self::server_error(&error)
    }
}

impl From<diesel::result::Error> for OAuthError {
    fn from(error: diesel::result::Error) -> Self {
        Self::from(anyhow::Error::new(error))
    }
}

impl UserClaimsOf for UserClaims {
    fn of(user: &User, groups: Vec<String>, scopes: &Scopes) -> Self {
        let profile = scopes.contains("profile");
        let email = scopes.contains("email");
        Self {
            preferred_username: profile.then(|| user.username.to_string()),
            name: profile.then(|| user.display_name.clone()),
            zoneinfo: profile.then(|| user.time_zone.name().to_owned()),
            updated_at: profile.then(|| user.updated_at.and_utc().timestamp()),
            email: email.then(|| user.email.to_string()),
            // Addresses are set by an admin or confirmed through the mailbox (`/email/confirm`).
            email_verified: email.then_some(true),
            groups: scopes.contains("groups").then_some(groups),
        }
    }
}

/// The user's claims an app's scopes allow, from the user.
trait UserClaimsOf {
    fn of(user: &User, groups: Vec<String>, scopes: &Scopes) -> Self;
}

/// What an ID token says (OpenID Connect Core 2).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub azp: String,
    pub exp: i64,
    pub iat: i64,
    pub auth_time: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    #[serde(default)]
    pub amr: Vec<String>,
    pub sid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_hash: Option<String>,
    #[serde(flatten)]
    pub user: UserClaims,
}

impl crate::auth::tokens::IssuedAt for IdClaims {
    fn issued_at(&self) -> i64 {
        self.iat
    }
}

/// The token endpoint's answer (RFC 6749 §5.1, OpenID Connect Core 3.1.3.3).
#[derive(Debug, Serialize)]
pub struct TokenAnswer {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

/// Who asks for a code: a signed-in user of a live session, and what they proved.
pub struct CodeRequest<'a> {
    pub client: &'a Client,
    pub user_id: i64,
    pub session_id: &'a str,
    pub redirect_uri: &'a str,
    pub scopes: &'a Scopes,
    pub nonce: Option<&'a str>,
    /// S256 challenge (checked by the caller: 43 base64url characters).
    pub code_challenge: Option<&'a str>,
    pub auth_time: i64,
    pub amr: &'a [String],
    /// RFC 8707: the resource the app's tokens are for (their audience); `None`: the app.
    pub resource: Option<&'a str>,
}

/// SHA-256 as lower-case hex: how codes, tokens and references are stored.
pub(super) fn sha256_hex(text: &str) -> String {
    digest::digest(&digest::SHA256, text.as_bytes()).as_ref().iter().map(|byte| format!("{byte:02x}")).collect()
}

fn at_time(unix: i64) -> NaiveDateTime {
    chrono::DateTime::from_timestamp(unix, 0).map_or_else(now, |at| at.naive_utc())
}

fn later(at: NaiveDateTime, by: Duration) -> NaiveDateTime {
    at + chrono::Duration::from_std(by).unwrap_or(chrono::Duration::MAX)
}

/// RFC 7636 §4.6: base64url(SHA-256(verifier)).
pub fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, verifier.as_bytes()))
}

/// Whether a PKCE challenge has the shape S256 makes (43 base64url characters).
pub fn is_s256_challenge(challenge: &str) -> bool {
    challenge.len() == 43 && challenge.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
}

fn valid_verifier(verifier: &str) -> bool {
    VERIFIER_CHARS.contains(&verifier.len())
        && verifier.bytes().all(|byte| byte.is_ascii_alphanumeric() || b"-._~".contains(&byte))
}

pub use crate::db::oauth::app_session_id;

/// OpenID Connect Core 3.1.3.6: the left half of the hash of the access token, the hash
/// being the one of the ID token's algorithm (SHA-512 for Ed25519).
fn at_hash(alg: JwtAlgorithm, access_token: &str) -> String {
    let (algorithm, half) = match alg {
        JwtAlgorithm::EdDsa => (&digest::SHA512, 32),
        _ => (&digest::SHA256, 16),
    };
    URL_SAFE_NO_PAD.encode(&digest::digest(algorithm, access_token.as_bytes()).as_ref()[..half])
}

/// RFC 8707 §2: a resource is an absolute URI without a fragment; ours are checked like redirect
/// URIs (https, or http on loopback for development). The normalised form is returned.
pub fn check_resource(resource: &str) -> Result<String, &'static str> {
    crate::domain::https_or_loopback_url(resource).map(|url| url.to_string())
}

/// How long a pushed request's `request_uri` works (RFC 9126 §2.2): long enough to sign in
/// with a second step on the way, short enough to be worth nothing later.
pub const PUSHED_REQUEST_TTL: Duration = Duration::from_secs(120);
/// Pushed requests one app may have waiting (so nobody can grow the table).
const PUSHED_REQUESTS_PER_APP: i64 = 1000;
const REQUEST_URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";

/// The provider, for one request.
pub struct Provider<'a> {
    pub pool: &'a DbPool,
    pub sessions: &'a Sessions,
    pub throttle: std::sync::Arc<LoginThrottle>,
    pub cache: &'a super::cache::ClientCache,
}

/// How an app proved who it is at the token endpoint.
#[derive(Debug, Clone)]
pub struct ClientCredentials {
    pub client_id: String,
    /// `None`: a public client (or a confidential one that sent nothing, which is refused).
    pub secret: Option<String>,
}

impl Provider<'_> {
    pub fn issuer(&self) -> &str {
        self.sessions.keys().issuer()
    }

    /// The app behind `client_id`, enabled or not (`None`: no such app, or a row that does not
    /// read), as read at most a second ago.
    pub async fn find_client(&self, client_id: &str) -> Result<Option<Client>, OAuthError> {
        if client_id.is_empty() || client_id.len() > 128 {
            return Ok(None);
        }
        if let Some(known) = self.cache.get(client_id) {
            return Ok(known);
        }
        let wanted = client_id.to_owned();
        let row = db::run(self.pool, move |conn| -> anyhow::Result<_> {
            Ok(store::find_client_by_client_id(conn, &wanted)?)
        })
        .await?;
        let client = row.and_then(|row| {
            let id = row.client_id.clone();
            let client = Client::from_row(row);
            if client.is_none() {
                tracing::error!(client_id = id, "a stored app's settings do not read; it is refused");
            }
            client
        });
        self.cache.put(client_id, client.clone());
        Ok(client)
    }

    /// RFC 6749 §2.3: the app at the token, revocation and introspection endpoints. A wrong
    /// secret is audited and counted per app and address: a stranger's guesses pause only the
    /// stranger's address, never the app itself elsewhere.
    pub async fn authenticate_client(
        &self,
        credentials: &ClientCredentials,
        client_ip: &str,
    ) -> Result<Client, OAuthError> {
        let client = self.find_client(&credentials.client_id).await?.filter(|client| client.enabled);
        let Some(client) = client else { return Err(OAuthError::invalid_client()) };
        match (&credentials.secret, client.is_confidential()) {
            (None, false) => return Ok(client),
            (Some(_), false) | (None, true) => return Err(OAuthError::invalid_client()),
            (Some(_), true) => {}
        }
        let counters = self.throttle.client_counters(&client.client_id, client_ip);
        let watched = format!("{}\n{client_ip}", client.client_id);
        let right = credentials.secret.as_deref().is_some_and(|secret| client.secret_matches(secret));
        // A right secret from a pair with no recent wrong one here: nothing to read.
        if right && !self.cache.failed_lately(&watched) {
            return Ok(client);
        }
        if !right {
            self.cache.saw_failure(&watched);
        }
        let throttle = std::sync::Arc::clone(&self.throttle);
        let (id, ip) = (client.id, client_ip.to_owned());
        let paused = db::run(self.pool, move |conn| -> anyhow::Result<Option<Duration>> {
            let now = now();
            if let Some(wait) = throttle.paused(conn, &counters, now)? {
                return Ok(Some(wait));
            }
            if !right {
                // Counted as a sign-in's guess is: reserved, then kept (a pause at the limit).
                if let Err(wait) = throttle.begin(conn, &counters, now)? {
                    return Ok(Some(wait));
                }
                throttle.failed(conn, &counters, now)?;
                if let Some(row) = store::find_client(conn, id)? {
                    clients::record_auth_failure(conn, &Actor::anonymous(Some(ip)), &row)?;
                }
                return Ok(throttle.paused(conn, &counters, now)?);
            }
            Ok(None)
        })
        .await?;
        if let Some(wait) = paused {
            return Err(OAuthError { retry_after: Some(wait), ..OAuthError::invalid_client() });
        }
        if right { Ok(client) } else { Err(OAuthError::invalid_client()) }
    }

    /// Whether the user already let the app learn `scopes`.
    pub async fn has_consent(&self, user_id: i64, client: &Client, scopes: &Scopes) -> Result<bool, OAuthError> {
        let client_id = client.id;
        let stored =
            db::run(self.pool, move |conn| -> anyhow::Result<_> { Ok(store::find_consent(conn, user_id, client_id)?) })
                .await?;
        Ok(stored.is_some_and(|consent| scopes.covered_by(&Scopes::parse(&consent.scopes))))
    }

    /// A code for the app (stored hashed), and the consent recorded (it lists the app among
    /// the user's connected apps). `consented`: the user just said yes on the consent page.
    pub async fn issue_code(
        &self,
        request: &CodeRequest<'_>,
        consented: bool,
        actor: Actor,
    ) -> Result<String, OAuthError> {
        let code = crate::random::token_base64(SECRET_BYTES);
        let created = now();
        let row = CodeRow {
            code_hash: sha256_hex(&code),
            client_id: request.client.id,
            user_id: request.user_id,
            session_sid: request.session_id.to_owned(),
            redirect_uri: request.redirect_uri.to_owned(),
            scope: request.scopes.to_string(),
            nonce: request.nonce.map(str::to_owned),
            code_challenge: request.code_challenge.map(str::to_owned),
            auth_time: at_time(request.auth_time),
            amr: request.amr.join(" "),
            created_at: created,
            expires_at: later(created, CODE_TTL),
            used_at: None,
            grant_id: None,
            resource: request.resource.map(str::to_owned),
        };
        let (scopes, client_name) = (request.scopes.clone(), request.client.name.clone());
        db::run(self.pool, move |conn| -> anyhow::Result<()> {
            write_transaction(conn, |conn| -> anyhow::Result<()> {
                // The session must still be there: a code is never issued for an ended one.
                let live = crate::db::sessions::find_by_sid(conn, &row.session_sid)?
                    .is_some_and(|session| session.expires_at > created);
                if !live {
                    anyhow::bail!(SessionGone);
                }
                store::insert_code(conn, &row)?;
                let earlier = store::find_consent(conn, row.user_id, row.client_id)?;
                let all = earlier
                    .as_ref()
                    .map_or_else(|| scopes.clone(), |consent| Scopes::parse(&consent.scopes).union(&scopes));
                store::save_consent(conn, row.user_id, row.client_id, &all.to_string(), created)?;
                if consented {
                    let target = users::find_by_id(conn, row.user_id)?;
                    let target = target.as_ref().map(|user| (user.id, user.username.as_str()));
                    audit::record(conn, &actor, Action::AppConsent, target, &format!("{client_name}: {scopes}"))?;
                }
                Ok(())
            })
        })
        .await
        .map_err(|error| match error.downcast_ref::<SessionGone>() {
            Some(_) => OAuthError::new("login_required", "The session ended; sign in again"),
            None => OAuthError::from(error),
        })?;
        Ok(code)
    }

    /// Keeps an app's checked authorization request (`params`, JSON) for
    /// [`PUSHED_REQUEST_TTL`]; its `request_uri` (RFC 9126 §2.2).
    pub async fn push_request(&self, client: &Client, params: String) -> Result<String, OAuthError> {
        let request_uri = format!("{REQUEST_URI_PREFIX}{}", crate::random::token_base64(32));
        let (hash, client_id, at) = (sha256_hex(&request_uri), client.id, now());
        let stored = db::run(self.pool, move |conn| -> anyhow::Result<bool> {
            let expires = later(at, PUSHED_REQUEST_TTL);
            Ok(store::insert_pushed_request(conn, (&hash, client_id, &params), at, expires, PUSHED_REQUESTS_PER_APP)?)
        })
        .await?;
        if !stored {
            return Err(OAuthError {
                retry_after: Some(PUSHED_REQUEST_TTL),
                ..OAuthError::new("invalid_request", "This app has too many sign-in requests waiting; try again later")
            });
        }
        Ok(request_uri)
    }

    /// The parameters pushed as `request_uri` by the app `client_id` names, while they work
    /// (not expired, not used). `None` otherwise.
    pub async fn pushed_request(&self, client_id: &str, request_uri: &str) -> Result<Option<String>, OAuthError> {
        if !request_uri.starts_with(REQUEST_URI_PREFIX) || request_uri.len() > 200 {
            return Ok(None);
        }
        let Some(client) = self.find_client(client_id).await? else { return Ok(None) };
        let hash = sha256_hex(request_uri);
        let row = db::run(self.pool, move |conn| -> anyhow::Result<_> { Ok(store::find_pushed_request(conn, &hash)?) })
            .await?;
        Ok(row
            .filter(|row| row.client_id == client.id && row.used_at.is_none() && row.expires_at > now())
            .map(|row| row.params))
    }

    /// Spends a pushed request (when its code is issued); false when it was spent already.
    pub async fn use_pushed_request(&self, request_uri: &str) -> Result<bool, OAuthError> {
        let hash = sha256_hex(request_uri);
        Ok(db::run(self.pool, move |conn| -> anyhow::Result<bool> {
            Ok(store::use_pushed_request(conn, &hash, now())?)
        })
        .await?)
    }

    /// `grant_type=authorization_code` (RFC 6749 §4.1.3, RFC 7636 §4.6). A code that comes back
    /// a second time revokes every token issued from it.
    pub async fn exchange_code(
        &self,
        client: &Client,
        code: &str,
        redirect_uri: &str,
        verifier: Option<&str>,
        resource: Option<&str>,
    ) -> Result<TokenAnswer, OAuthError> {
        // RFC 8707 §2.2: at the token endpoint, only the resource the code was issued for.
        let resource = match resource.filter(|resource| !resource.is_empty()) {
            None => None,
            Some(raw) => Some(check_resource(raw).map_err(|message| OAuthError::new("invalid_target", message))?),
        };
        if code.is_empty() || code.len() > MAX_TOKEN_CHARS {
            return Err(OAuthError::invalid_grant("The code is not valid"));
        }
        if verifier.is_some_and(|verifier| !valid_verifier(verifier)) {
            return Err(OAuthError::invalid_grant("The code_verifier is not 43 to 128 unreserved characters"));
        }
        let (hash, client_db_id, redirect_uri) = (sha256_hex(code), client.id, redirect_uri.to_owned());
        let verifier = verifier.map(str::to_owned);
        let refresh = crate::random::token_base64(SECRET_BYTES);
        let (refresh_hash, refresh_ttl, client_name) =
            (sha256_hex(&refresh), client.refresh_token_ttl, client.name.clone());
        let outcome = db::run(self.pool, move |conn| -> anyhow::Result<Result<Issued, OAuthError>> {
            write_transaction(conn, |conn| -> anyhow::Result<Result<Issued, OAuthError>> {
                let at = now();
                // The app as it is now (the token endpoint's copy may be a second old).
                if !store::find_client(conn, client_db_id)?.is_some_and(|row| row.is_enabled) {
                    return Ok(Err(OAuthError::invalid_client()));
                }
                let Some(code) = store::find_code(conn, &hash)? else {
                    return Ok(Err(OAuthError::invalid_grant("The code is not valid")));
                };
                if code.client_id != client_db_id {
                    return Ok(Err(OAuthError::invalid_grant("The code was issued to another client")));
                }
                if code.used_at.is_some() {
                    let revoked = match code.grant_id {
                        Some(grant) => store::revoke_grant(conn, grant, at)?,
                        None => 0,
                    };
                    let target = users::find_by_id(conn, code.user_id)?;
                    let target = target.as_ref().map(|user| (user.id, user.username.as_str()));
                    let details = format!("{client_name}: {revoked} grant revoked");
                    audit::record(conn, &Actor::default(), Action::AppCodeReused, target, &details)?;
                    return Ok(Err(OAuthError::invalid_grant(
                        "The code was used already; the tokens issued from it are revoked",
                    )));
                }
                if code.expires_at <= at {
                    return Ok(Err(OAuthError::invalid_grant("The code has expired")));
                }
                if resource.as_ref().is_some_and(|asked| code.resource.as_ref() != Some(asked)) {
                    return Ok(Err(OAuthError::new("invalid_target", "The code was not issued for that resource")));
                }
                if code.redirect_uri != redirect_uri {
                    return Ok(Err(OAuthError::invalid_grant("redirect_uri is not the one the code was issued for")));
                }
                match (&code.code_challenge, &verifier) {
                    (Some(challenge), Some(verifier)) if s256(verifier) == *challenge => {}
                    (Some(_), Some(_)) => {
                        return Ok(Err(OAuthError::invalid_grant("The code_verifier does not match the challenge")));
                    }
                    (Some(_), None) => return Ok(Err(OAuthError::invalid_grant("The code_verifier is missing"))),
                    // RFC 9700 §4.8.2: a verifier for a code issued without a challenge is a downgrade.
                    (None, Some(_)) => {
                        return Ok(Err(OAuthError::invalid_grant("The code was issued without a PKCE challenge")));
                    }
                    (None, None) => {}
                }
                let approved = Approved {
                    client_id: code.client_id,
                    user_id: code.user_id,
                    session_sid: &code.session_sid,
                    scope: &code.scope,
                    auth_time: code.auth_time,
                    amr: &code.amr,
                    nonce: code.nonce.as_deref(),
                    resource: code.resource.as_deref(),
                };
                let (issued, grant_id) = match start_grant(conn, &approved, (&refresh_hash, refresh_ttl), at)? {
                    Ok(started) => started,
                    Err(error) => return Ok(Err(error)),
                };
                if !store::use_code(conn, &hash, grant_id, at)? {
                    anyhow::bail!("the code was used at the same moment");
                }
                Ok(Ok(issued))
            })
        })
        .await?;
        self.sync_after_revoking(&outcome).await?;
        self.answer(client, outcome, Some(refresh), true).await
    }

    /// `grant_type=refresh_token` (RFC 6749 §6): rotated at each use; a retired token coming
    /// back revokes the grant (RFC 9700 §4.14.2). Bound to the app and to the Portcullis session.
    pub async fn refresh(
        &self,
        client: &Client,
        token: &str,
        asked: Option<&Scopes>,
    ) -> Result<TokenAnswer, OAuthError> {
        if token.is_empty() || token.len() > MAX_TOKEN_CHARS {
            return Err(OAuthError::invalid_grant("The refresh token is not valid"));
        }
        let (hash, client_db_id, client_name) = (sha256_hex(token), client.id, client.name.clone());
        let next = crate::random::token_base64(SECRET_BYTES);
        let (next_hash, refresh_ttl) = (sha256_hex(&next), client.refresh_token_ttl);
        let asked = asked.cloned();
        let allowed = client.clone();
        let outcome = db::run(self.pool, move |conn| -> anyhow::Result<Result<Issued, OAuthError>> {
            write_transaction(conn, |conn| -> anyhow::Result<Result<Issued, OAuthError>> {
                let at = now();
                let refused = |why: &str| Ok(Err(OAuthError::invalid_grant(why)));
                if !store::find_client(conn, client_db_id)?.is_some_and(|row| row.is_enabled) {
                    return Ok(Err(OAuthError::invalid_client()));
                }
                let Some(stored) = store::find_refresh_token(conn, &hash)? else {
                    return refused("The refresh token is not valid");
                };
                let Some(grant) = store::find_grant(conn, stored.grant_id)? else {
                    return refused("The refresh token is not valid");
                };
                if grant.client_id != client_db_id {
                    return refused("The refresh token was issued to another client");
                }
                if stored.retired_at.is_some() {
                    if grant.revoked_at.is_none() {
                        store::revoke_grant(conn, grant.id, at)?;
                        let target = match grant.user_id {
                            Some(id) => users::find_by_id(conn, id)?,
                            None => None,
                        };
                        let target = target.as_ref().map(|user| (user.id, user.username.as_str()));
                        audit::record(conn, &Actor::default(), Action::AppRefreshReused, target, &client_name)?;
                    }
                    return refused("The refresh token was used already; the tokens issued with it are revoked");
                }
                if stored.expires_at <= at || grant.revoked_at.is_some() {
                    return refused("The refresh token has expired or was revoked");
                }
                let (Some(user_id), Some(session_sid)) = (grant.user_id, grant.session_sid.clone()) else {
                    return refused("The refresh token is not valid");
                };
                let Some(user) = live_user_of_session(conn, &session_sid, user_id, at)? else {
                    return refused("The session this app signed in with has ended");
                };
                let groups: Vec<String> = crate::db::groups::groups_of(conn, user.id)?
                    .into_iter()
                    .map(|group| group.name.to_string())
                    .collect();
                if !allowed.admits(user.role, &groups) {
                    store::revoke_grant(conn, grant.id, at)?;
                    return refused("The user may no longer use this app");
                }
                let granted = Scopes::parse(&grant.scope);
                let scope = match &asked {
                    Some(asked) if !asked.covered_by(&granted) => {
                        return Ok(Err(OAuthError::new(
                            "invalid_scope",
                            "A refresh may not ask for more than was granted",
                        )));
                    }
                    Some(asked) => asked.to_string(),
                    None => grant.scope.clone(),
                };
                if !store::retire_refresh_token(conn, &hash, at)? {
                    anyhow::bail!("the refresh token was used at the same moment");
                }
                store::insert_refresh_token(conn, &next_hash, grant.id, at, later(at, refresh_ttl))?;
                store::touch_grant(conn, grant.id, at)?;
                store::touch_consent(conn, user_id, client_db_id, at)?;
                Ok(Ok(Issued {
                    user,
                    groups,
                    grant_gid: grant.gid,
                    session_sid,
                    scope,
                    nonce: None,
                    auth_time: grant.auth_time,
                    amr: grant.amr,
                    resource: grant.resource,
                    ended_older: false,
                }))
            })
        })
        .await?;
        self.sync_after_revoking(&outcome).await?;
        self.answer(client, outcome, Some(next), false).await
    }

    /// `grant_type=client_credentials` (RFC 6749 §4.4): a confidential app acting as itself.
    /// No user, no refresh token, no database work beyond finding the app.
    pub fn client_credentials(&self, client: &Client) -> Result<TokenAnswer, OAuthError> {
        if !client.is_confidential() {
            return Err(OAuthError::new("unauthorized_client", "Only a confidential client may act as itself"));
        }
        let now = chrono::Utc::now().timestamp();
        let ttl = client.access_token_ttl.as_secs();
        let claims = AppAccessClaims {
            iss: self.issuer().to_owned(),
            sub: client.client_id.clone(),
            aud: client.client_id.clone(),
            client_id: client.client_id.clone(),
            exp: now + i64::try_from(ttl).unwrap_or(0),
            iat: now,
            jti: crate::random::token_base64(16),
            scope: String::new(),
            gid: crate::random::token_base64(16),
            sid: None,
            auth_time: None,
            amr: Vec::new(),
            user: UserClaims::default(),
        };
        let access_token = self.sessions.keys().sign_access(&claims)?;
        Ok(TokenAnswer {
            access_token,
            token_type: "Bearer",
            expires_in: ttl,
            scope: String::new(),
            refresh_token: None,
            id_token: None,
        })
    }

    /// A refused code or refresh token may have revoked a grant, and a new grant may have ended
    /// older ones: refused here at once.
    /// The answer for a grant another flow started (the device flow): no nonce.
    pub(super) async fn finish_grant(
        &self,
        client: &Client,
        outcome: Result<Issued, OAuthError>,
        refresh: Option<String>,
    ) -> Result<TokenAnswer, OAuthError> {
        if outcome.as_ref().is_ok_and(|issued| issued.ended_older) {
            self.sessions.sync_revocations(self.pool).await?;
        }
        self.answer(client, outcome, refresh, false).await
    }

    async fn sync_after_revoking(&self, outcome: &Result<Issued, OAuthError>) -> Result<(), OAuthError> {
        if outcome.as_ref().is_ok_and(|issued| issued.ended_older) || outcome.is_err() {
            self.sessions.sync_revocations(self.pool).await?;
        }
        Ok(())
    }

    async fn answer(
        &self,
        client: &Client,
        outcome: Result<Issued, OAuthError>,
        refresh: Option<String>,
        with_nonce: bool,
    ) -> Result<TokenAnswer, OAuthError> {
        let issued = outcome?;
        let scopes = Scopes::parse(&issued.scope);
        let now = chrono::Utc::now().timestamp();
        let ttl = client.access_token_ttl.as_secs();
        let user = UserClaims::of(&issued.user, issued.groups, &scopes);
        let amr: Vec<String> = issued.amr.split_whitespace().map(str::to_owned).collect();
        let auth_time = issued.auth_time.and_utc().timestamp();
        let access = AppAccessClaims {
            iss: self.issuer().to_owned(),
            sub: issued.user.id.to_string(),
            aud: issued.resource.clone().unwrap_or_else(|| client.client_id.clone()),
            client_id: client.client_id.clone(),
            exp: now + i64::try_from(ttl).unwrap_or(0),
            iat: now,
            jti: crate::random::token_base64(16),
            scope: issued.scope.clone(),
            gid: issued.grant_gid,
            sid: Some(app_session_id(&issued.session_sid)),
            auth_time: Some(auth_time),
            amr: amr.clone(),
            user: user.clone(),
        };
        let access_token = self.sessions.keys().sign_access(&access)?;
        let id_token = if scopes.contains("openid") {
            let claims = IdClaims {
                iss: self.issuer().to_owned(),
                sub: issued.user.id.to_string(),
                aud: client.client_id.clone(),
                azp: client.client_id.clone(),
                exp: now + i64::try_from(ttl).unwrap_or(0),
                iat: now,
                auth_time,
                nonce: if with_nonce { issued.nonce } else { None },
                amr,
                sid: app_session_id(&issued.session_sid),
                at_hash: Some(at_hash(client.id_token_alg, &access_token)),
                user,
            };
            Some(self.sign_id_token(client.id_token_alg, &claims).await?)
        } else {
            None
        };
        Ok(TokenAnswer {
            access_token,
            token_type: "Bearer",
            expires_in: ttl,
            scope: issued.scope,
            refresh_token: refresh,
            id_token,
        })
    }

    /// Signs an ID token, making this algorithm's key first when there is none yet.
    async fn sign_id_token(&self, alg: JwtAlgorithm, claims: &IdClaims) -> Result<String, OAuthError> {
        match self.sessions.keys().sign_id_token(alg, claims) {
            Err(error) if error.is::<NoIdTokenKey>() => {
                self.sessions.ensure_id_key(self.pool, alg).await?;
                Ok(self.sessions.keys().sign_id_token(alg, claims)?)
            }
            other => Ok(other?),
        }
    }

    /// An app's access token, checked in memory: our signature, the app's audience, and none of
    /// its grant, app (disabled) or session revoked.
    pub fn check_access_token(&self, token: &str) -> Result<std::sync::Arc<AppAccessClaims>, AuthFailure> {
        self.sessions.authenticate_app(token)
    }

    /// RFC 7009: the token's grant ends (an access token's, or a refresh token's). A token
    /// of another app, or none we know, changes nothing; the answer is the same.
    pub async fn revoke(&self, client: &Client, token: &str) -> Result<(), OAuthError> {
        if token.is_empty() || token.len() > MAX_TOKEN_CHARS {
            return Ok(());
        }
        let by_access = self
            .sessions
            .keys()
            .verify_app_token::<AppAccessClaims>(token)
            .ok()
            .filter(|claims| claims.client_id == client.client_id)
            .map(|claims| claims.gid);
        let hash = sha256_hex(token);
        let client_db_id = client.id;
        db::run(self.pool, move |conn| -> anyhow::Result<()> {
            write_transaction(conn, |conn| -> anyhow::Result<()> {
                let at = now();
                if let Some(gid) = by_access {
                    match store::find_grant_by_gid(conn, &gid)? {
                        Some(grant) if grant.client_id == client_db_id => {
                            store::revoke_grant(conn, grant.id, at)?;
                        }
                        Some(_) => {}
                        // A client's own token (client credentials): only the revoked list knows it.
                        None => crate::db::sessions::revoke_id(conn, &gid, at)?,
                    }
                } else if let Some(stored) = store::find_refresh_token(conn, &hash)?
                    && let Some(grant) = store::find_grant(conn, stored.grant_id)?
                    && grant.client_id == client_db_id
                {
                    store::revoke_grant(conn, grant.id, at)?;
                }
                Ok(())
            })
        })
        .await?;
        self.sessions.sync_revocations(self.pool).await?;
        Ok(())
    }

    /// RFC 7662: what a token of this app says, or `{"active": false}` (also for another app's).
    pub async fn introspect(&self, client: &Client, token: &str) -> Result<Value, OAuthError> {
        let inactive = json!({"active": false});
        if token.is_empty() || token.len() > MAX_TOKEN_CHARS {
            return Ok(inactive);
        }
        match self.check_access_token(token) {
            Ok(claims) if claims.client_id == client.client_id => {
                let mut answer = serde_json::to_value(&*claims).map_err(anyhow::Error::from)?;
                answer["active"] = json!(true);
                answer["token_type"] = json!("Bearer");
                if let Some(object) = answer.as_object_mut() {
                    object.remove("gid");
                }
                return Ok(answer);
            }
            Ok(_) => return Ok(inactive),
            Err(AuthFailure::Unavailable(error)) => return Err(OAuthError::from(error)),
            Err(_) => {}
        }
        let (hash, client_db_id) = (sha256_hex(token), client.id);
        let found = db::run(
            self.pool,
            move |conn| -> anyhow::Result<Option<(store::RefreshRow, store::GrantRow, Option<User>)>> {
                let at = now();
                let Some(stored) = store::find_refresh_token(conn, &hash)? else { return Ok(None) };
                let Some(grant) = store::find_grant(conn, stored.grant_id)? else { return Ok(None) };
                let live = grant.client_id == client_db_id
                    && stored.retired_at.is_none()
                    && stored.expires_at > at
                    && grant.revoked_at.is_none();
                let user = match (live, grant.user_id, grant.session_sid.as_deref()) {
                    (true, Some(user_id), Some(sid)) => live_user_of_session(conn, sid, user_id, at)?,
                    _ => None,
                };
                Ok(user.is_some().then_some((stored, grant, user)))
            },
        )
        .await?;
        Ok(match found {
            Some((stored, grant, Some(user))) => json!({
                "active": true,
                "token_type": "refresh_token",
                "client_id": client.client_id,
                "scope": grant.scope,
                "sub": user.id.to_string(),
                "username": user.username.to_string(),
                "iss": self.issuer(),
                "iat": stored.issued_at.and_utc().timestamp(),
                "exp": stored.expires_at.and_utc().timestamp(),
            }),
            _ => inactive,
        })
    }
}

/// What a grant's tokens are made from.
/// What a grant starts from: an approved code, or an approved device code.
pub(super) struct Approved<'a> {
    pub client_id: i64,
    pub user_id: i64,
    pub session_sid: &'a str,
    pub scope: &'a str,
    pub auth_time: NaiveDateTime,
    pub amr: &'a str,
    pub nonce: Option<&'a str>,
    pub resource: Option<&'a str>,
}

/// Inside the caller's transaction: the grant and its first refresh token (`refresh`: its hash
/// and lifetime), for a session that is still open. Returns what the answer needs and the
/// grant's row id; `invalid_grant` when the session ended.
pub(super) fn start_grant(
    conn: &mut DbConnection,
    approved: &Approved<'_>,
    (refresh_hash, refresh_ttl): (&str, Duration),
    at: NaiveDateTime,
) -> anyhow::Result<Result<(Issued, i64), OAuthError>> {
    let Some(user) = live_user_of_session(conn, approved.session_sid, approved.user_id, at)? else {
        return Ok(Err(OAuthError::invalid_grant("The session that allowed it has ended")));
    };
    let gid = crate::random::token_base64(16);
    let grant = store::insert_grant(
        conn,
        &NewGrant {
            gid: &gid,
            client_id: approved.client_id,
            user_id: Some(approved.user_id),
            session_sid: Some(approved.session_sid),
            scope: approved.scope,
            auth_time: approved.auth_time,
            amr: approved.amr,
            nonce: approved.nonce,
            created_at: at,
            last_used_at: at,
            resource: approved.resource,
        },
    )?;
    let ended_older =
        store::revoke_grants_beyond(conn, approved.session_sid, approved.client_id, GRANTS_PER_SESSION, at)? > 0;
    store::insert_refresh_token(conn, refresh_hash, grant.id, at, later(at, refresh_ttl))?;
    store::touch_consent(conn, approved.user_id, approved.client_id, at)?;
    let groups = crate::db::groups::groups_of(conn, user.id)?.into_iter().map(|group| group.name.to_string()).collect();
    let issued = Issued {
        user,
        groups,
        grant_gid: gid,
        session_sid: approved.session_sid.to_owned(),
        scope: approved.scope.to_owned(),
        nonce: approved.nonce.map(str::to_owned),
        auth_time: approved.auth_time,
        amr: approved.amr.to_owned(),
        resource: approved.resource.map(str::to_owned),
        ended_older,
    };
    Ok(Ok((issued, grant.id)))
}

pub(super) struct Issued {
    user: User,
    groups: Vec<String>,
    grant_gid: String,
    session_sid: String,
    scope: String,
    nonce: Option<String>,
    auth_time: NaiveDateTime,
    amr: String,
    /// RFC 8707: the audience of its access tokens (`None`: the app itself).
    resource: Option<String>,
    /// The grant ended older grants of its session with the app (`GRANTS_PER_SESSION`).
    ended_older: bool,
}

#[derive(Debug, thiserror::Error)]
#[error("the session ended")]
struct SessionGone;

/// The user of a Portcullis session that is still open, when still enabled. The app's use
/// keeps the session in use (it is not idle while its apps renew their tokens).
fn live_user_of_session(
    conn: &mut DbConnection,
    sid: &str,
    user_id: i64,
    at: NaiveDateTime,
) -> anyhow::Result<Option<User>> {
    let session = crate::db::sessions::find_by_sid(conn, sid)?;
    let Some(session) = session.filter(|session| session.user_id == user_id && session.expires_at > at) else {
        return Ok(None);
    };
    crate::db::sessions::touch(conn, session.id, at)?;
    Ok(users::find_by_id(conn, user_id)?.filter(|user| user.is_active))
}
