//! Login sessions: started by a login, kept alive by rotating refresh tokens, ended by logout
//! or revocation. The per-request check (`authenticate`) needs no database: a signed access
//! token plus the in-memory revoked list.
use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::digest;
use chrono::NaiveDateTime;

pub use super::authenticated::Authenticated;
use super::client::ClientInfo;
use super::proof::{Channel, Method};
use super::revocation::{Refusal, RevocationList};
use super::tokens::{Audience, Grant, IssuedToken, JwtKeys, TokenError};
use super::verified_tokens::VerifiedTokens;
use crate::config::{MfaPolicy, NoticeKind, SessionPolicy};
use crate::db::audit::{self, Action, Actor};
use crate::db::sessions::{self, Ending, NewSession, Session};
use crate::db::users::{self, User, now};
use crate::db::{self, DbConnection, DbPool, write_transaction};
use crate::domain::Role;
use crate::mail::{Notice, Outbox, Recipient};

/// A session's RFC 8176 `amr` in words, for people: "password", "password and one-time code".
pub fn describe_amr(amr: &str) -> String {
    let words: Vec<&str> = amr
        .split_whitespace()
        .filter_map(|value| match value {
            "pwd" => Some("password"),
            "otp" => Some("one-time code"),
            "hwk" | "swk" => Some("passkey"),
            _ => None,
        })
        .collect();
    if words.is_empty() { "password".to_owned() } else { words.join(" and ") }
}

/// 256 random bits.
const REFRESH_TOKEN_BYTES: usize = 32;
/// Sessions one user may hold; signing in once more ends the least recently used, so nobody
/// can grow the session table without bound by signing in again and again.
pub const MAX_SESSIONS_PER_USER: i64 = 100;
/// Longer than any token we issue; anything bigger is refused without a lookup.
const MAX_REFRESH_TOKEN_CHARS: usize = 128;
/// A browser can send the same refresh cookie twice at once (two tabs opened together after
/// the access cookie ran out). A token retired this recently renews the access token
/// without raising the reuse alarm — for the cookie only; API clients must not race.
const BROWSER_REUSE_GRACE: chrono::Duration = chrono::Duration::seconds(10);

#[derive(Debug)]
pub enum AuthFailure {
    Missing,
    Expired,
    Invalid,
    Revoked,
    /// Whether the session is still valid cannot be known now; callers fail closed (503).
    Unavailable(anyhow::Error),
}

/// Tokens handed out at login or renewal.
pub struct SessionTokens {
    pub access: IssuedToken,
    /// A new refresh token, unless this was a grace renewal (the browser keeps its cookie).
    pub refresh: Option<String>,
    /// How long the refresh token stays good if unused: the idle timeout, or less when the
    /// session's lifetime ends sooner.
    pub refresh_expires_in: Duration,
    pub authenticated: Authenticated,
}

/// Why a refresh token was not accepted. Callers answer all three alike.
#[derive(Debug, PartialEq, Eq)]
pub enum RefreshRefusal {
    Unknown,
    /// Idle too long, past its lifetime, or its user disabled.
    Ended,
    /// A retired token came back: someone holds a copy. The session is now revoked.
    Reused,
}

/// Whether a retired token presented within `BROWSER_REUSE_GRACE` is forgiven.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presenter {
    Browser,
    ApiClient,
}

/// Where a sign-in came from, for the new-device notice: a browser whose device cookie shows
/// it signed in to this account before, a browser that did not, or an API client (no cookie).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device {
    Known,
    New,
    ApiClient,
}

/// The session machinery, one per instance, shared by its workers.
pub struct Sessions {
    keys: JwtKeys,
    policy: SessionPolicy,
    mfa: MfaPolicy,
    revocations: Arc<RevocationList>,
    verified: VerifiedTokens,
    /// The same memo for the access tokens issued to apps (userinfo).
    app_verified: VerifiedTokens<super::app_tokens::AppAccessClaims>,
    outbox: Arc<Outbox>,
    /// Makes the apps' ID-token keys on first need (`ensure_id_key`).
    key_maker: Option<Arc<super::signing_keys::SigningKeys>>,
}

impl Sessions {
    pub fn new(
        keys: JwtKeys,
        policy: SessionPolicy,
        mfa: MfaPolicy,
        revocations: Arc<RevocationList>,
        outbox: Arc<Outbox>,
    ) -> Self {
        Self {
            keys,
            policy,
            mfa,
            revocations,
            verified: VerifiedTokens::default(),
            app_verified: VerifiedTokens::default(),
            outbox,
            key_maker: None,
        }
    }

    /// With the maker of signing keys, so that ID-token keys are made when an app first needs one.
    pub fn with_key_maker(mut self, maker: Arc<super::signing_keys::SigningKeys>) -> Self {
        self.key_maker = Some(maker);
        self
    }

    /// Makes sure this instance can sign ID tokens with `alg`: a key made (or found, made by
    /// another instance) in the database, and the keys read again.
    pub async fn ensure_id_key(&self, pool: &DbPool, alg: crate::config::JwtAlgorithm) -> anyhow::Result<()> {
        let maker = self.key_maker.clone().ok_or_else(|| anyhow::anyhow!("no key maker"))?;
        let keys = db::run(pool, move |conn| -> anyhow::Result<_> {
            let now = now();
            if maker.ensure_id_key(conn, alg, now)? {
                tracing::info!(alg = alg.name(), "made a key for ID tokens");
            }
            maker.load(conn, now)
        })
        .await?;
        self.replace_keys(keys);
        Ok(())
    }

    /// The check of an app's access token (userinfo, introspection): our signature, the app's
    /// own audience, and neither its grant nor the app revoked or outdated since. No I/O; a
    /// token seen before is recognised from the memo.
    pub fn authenticate_app(&self, token: &str) -> Result<Arc<super::app_tokens::AppAccessClaims>, AuthFailure> {
        let now = chrono::Utc::now().timestamp();
        let claims = match self.app_verified.get(token, now) {
            Some(claims) => claims,
            None => {
                let (claims, key_until) = self
                    .keys
                    .verify_app_token_until::<super::app_tokens::AppAccessClaims>(token)
                    .map_err(|error| match error {
                        TokenError::Expired => AuthFailure::Expired,
                        TokenError::Invalid => AuthFailure::Invalid,
                    })?;
                // A user's token names its session (tokens of versions before it did not: the app
                // renews them).
                let of_user = claims.sub != claims.client_id;
                if claims.aud != claims.client_id
                    || claims.gid.is_empty()
                    || claims.exp <= now
                    || (of_user && claims.sid.is_none())
                {
                    return Err(AuthFailure::Invalid);
                }
                let claims = Arc::new(claims);
                self.app_verified.remember(token, &claims, now, key_until);
                claims
            }
        };
        let app = super::app_tokens::app_tokens_key(&claims.client_id);
        match &claims.sid {
            Some(sid) => self.check_revoked(&[&claims.gid, &app, sid], claims.iat)?,
            None => self.check_revoked(&[&claims.gid, &app], claims.iat)?,
        }
        Ok(claims)
    }

    /// The per-request check of a token that names the ids `ids` (a grant, an app) and was
    /// issued at `issued_at`: none revoked or outdated. No I/O.
    pub fn check_revoked(&self, ids: &[&str], issued_at: i64) -> Result<(), AuthFailure> {
        for id in ids {
            match self.revocations.check(id, issued_at) {
                Ok(()) => {}
                Err(Refusal::Revoked) => return Err(AuthFailure::Revoked),
                Err(Refusal::Outdated) => return Err(AuthFailure::Revoked),
                Err(Refusal::Stale) => {
                    return Err(AuthFailure::Unavailable(anyhow::anyhow!("the revoked-session list is out of date")));
                }
            }
        }
        Ok(())
    }

    /// After this instance revoked something: refused here at once, not at the next tick.
    pub async fn sync_revocations(&self, pool: &DbPool) -> anyhow::Result<()> {
        self.revocations.sync_now(pool).await
    }

    pub fn policy(&self) -> &SessionPolicy {
        &self.policy
    }

    /// The signing keys (the JWKS publishes their public halves).
    pub fn keys(&self) -> &JwtKeys {
        &self.keys
    }

    /// Puts the signing keys just read in place; when what verifies changed, tokens verified
    /// before are checked again.
    pub fn replace_keys(&self, keys: Vec<super::tokens::LoadedKey>) {
        if self.keys.replace_keys(keys) {
            self.verified.clear();
            self.app_verified.clear();
        }
    }

    /// Whether `caller` proved who they are recently enough for a change that controls
    /// sign-in (`PORTCULLIS_FRESH_PROOF`). From the token alone.
    pub fn proved_recently(&self, caller: &Authenticated) -> bool {
        caller.proved_within(self.policy.fresh_proof, chrono::Utc::now().timestamp())
    }

    /// The per-request check: signature and claims, then the revoked list. No I/O.
    /// A token seen before is recognised from the memo of verified tokens (still checked for
    /// expiry and against the revoked list).
    pub fn authenticate(&self, token: &str) -> Result<Arc<Authenticated>, AuthFailure> {
        self.authenticate_for(token, Audience::Portcullis)
    }

    /// The gate's check: a token for the gate (its cookie) or for us (a Bearer token).
    pub fn authenticate_at_gate(&self, token: &str) -> Result<Arc<Authenticated>, AuthFailure> {
        match self.authenticate_for(token, Audience::Gate) {
            Err(AuthFailure::Invalid) => self.authenticate_for(token, Audience::Portcullis),
            other => other,
        }
    }

    fn authenticate_for(&self, token: &str, audience: Audience) -> Result<Arc<Authenticated>, AuthFailure> {
        let now = chrono::Utc::now().timestamp();
        let remembered = self.verified.get(token, now);
        if remembered.as_ref().is_some_and(|found| found.audience != audience) {
            return Err(AuthFailure::Invalid);
        }
        let authenticated = match remembered {
            Some(authenticated) => authenticated,
            None => {
                let (claims, key_until) = self.keys.verify_until(token, audience).map_err(|error| match error {
                    TokenError::Expired => AuthFailure::Expired,
                    TokenError::Invalid => AuthFailure::Invalid,
                })?;
                let authenticated = Arc::new(Authenticated::from_claims(claims, audience).ok_or(AuthFailure::Invalid)?);
                self.verified.remember(token, &authenticated, now, key_until);
                authenticated
            }
        };
        match self.revocations.check(&authenticated.session_id, authenticated.issued_at) {
            Ok(()) => Ok(authenticated),
            Err(Refusal::Revoked) => Err(AuthFailure::Revoked),
            // Renewed like an expired token: the session goes on.
            Err(Refusal::Outdated) => Err(AuthFailure::Expired),
            Err(Refusal::Stale) => {
                Err(AuthFailure::Unavailable(anyhow::anyhow!("the revoked-session list is out of date")))
            }
        }
    }

    /// After a successful sign-in (`method` says how, `channel` through which door): records
    /// the login and opens a session. Only `sign_in::finish` calls it.
    pub(super) async fn start(
        &self,
        pool: &DbPool,
        user: User,
        client: &ClientInfo,
        channel: Channel,
        method: Method,
        device: Device,
    ) -> anyhow::Result<SessionTokens> {
        let (via, amr) = (channel.as_str(), method.amr());
        let refresh = crate::random::token_base64(REFRESH_TOKEN_BYTES);
        let refresh_hash = hash_refresh_token(&refresh);
        let created = now();
        let expires = created + chrono::Duration::from_std(self.policy.lifetime)?;
        let client = client.clone();
        let login_user = user.clone();
        let outbox = Arc::clone(&self.outbox);
        let session = db::run(pool, move |conn| -> anyhow::Result<(Session, usize, Vec<String>)> {
            write_transaction(conn, |conn| {
                users::record_login(conn, login_user.id)?;
                let actor = Actor {
                    user: Some((login_user.id, login_user.username.to_string())),
                    client_ip: Some(client.ip.clone()),
                };
                let new = NewSession {
                    sid: &crate::random::token_base64(16),
                    user_id: login_user.id,
                    created_at: created,
                    last_used_at: created,
                    expires_at: expires,
                    client_ip: &client.ip,
                    user_agent: &client.software,
                    via,
                    amr,
                    proved_at: created,
                };
                let session = sessions::insert(conn, &new, &refresh_hash)?;
                let mut ended = 0;
                for id in sessions::beyond_newest(conn, login_user.id, MAX_SESSIONS_PER_USER)? {
                    ended += sessions::revoke(conn, &Ending::One { user_id: login_user.id, id }, created)?.len();
                }
                let mut details = format!("via {via} ({}); {}", describe_amr(amr), client.software);
                if ended > 0 {
                    details.push_str(&format!(
                        "; {ended} least recently used session(s) ended (at most {MAX_SESSIONS_PER_USER} per user)"
                    ));
                }
                audit::record(conn, &actor, Action::LoginOk, Some((login_user.id, &login_user.username)), &details)?;
                // A browser new to an account that has signed in before: its owner hears of it.
                if device == Device::New && login_user.last_login_at.is_some() {
                    let notice = Notice::NewDevice {
                        software: client.software.clone(),
                        client_ip: client.ip.clone(),
                        at: format!("{} UTC", created.format("%Y-%m-%d %H:%M")),
                    };
                    outbox.notify(conn, Recipient::of(&login_user), NoticeKind::NewDevice, notice)?;
                }
                Ok((session, ended, group_names(conn, login_user.id)?))
            })
        })
        .await?;
        let (session, ended, groups) = session;
        if ended > 0 {
            self.revocations.sync_now(pool).await?;
        }
        self.tokens_for(&(user, groups, None), &session, Some(refresh), created)
    }

    /// Exchanges a refresh token for a new access token and (normally) a new refresh token.
    /// A retired token revokes its session and records `session.refresh_reused`.
    pub async fn refresh(
        &self,
        pool: &DbPool,
        presented: &str,
        client: &ClientInfo,
        presenter: Presenter,
    ) -> anyhow::Result<Result<SessionTokens, RefreshRefusal>> {
        if presented.is_empty() || presented.len() > MAX_REFRESH_TOKEN_CHARS {
            return Ok(Err(RefreshRefusal::Unknown));
        }
        let presented_hash = hash_refresh_token(presented);
        let replacement = crate::random::token_base64(REFRESH_TOKEN_BYTES);
        let replacement_hash = hash_refresh_token(&replacement);
        let policy = self.policy;
        let client = client.clone();
        let step = db::run(pool, move |conn| -> anyhow::Result<RefreshStep> {
            write_transaction(conn, |conn| {
                refresh_step(conn, &presented_hash, &replacement_hash, &policy, &client, presenter)
            })
        })
        .await?;
        let at = now();
        match step {
            RefreshStep::Rotated(session, user) => Ok(Ok(self.tokens_for(&user, &session, Some(replacement), at)?)),
            RefreshStep::Forgiven(session, user) => Ok(Ok(self.tokens_for(&user, &session, None, at)?)),
            RefreshStep::Refused(refusal) => {
                if refusal == RefreshRefusal::Reused {
                    self.revocations.sync_now(pool).await?;
                }
                Ok(Err(refusal))
            }
        }
    }

    /// A fresh access token for a session that is still open, reflecting the user as they
    /// are now (after they changed their password or display name). `None`: session gone.
    pub async fn reissue(&self, pool: &DbPool, session_id: &str) -> anyhow::Result<Option<IssuedToken>> {
        let sid = session_id.to_owned();
        let found = db::run(pool, move |conn| -> anyhow::Result<Option<(Session, Holder)>> {
            let Some(session) = sessions::find_by_sid(conn, &sid)? else { return Ok(None) };
            let Some(user) = users::find_by_id(conn, session.user_id)? else { return Ok(None) };
            let holder = holder(conn, user, &sid)?;
            Ok(Some((session, holder)))
        })
        .await?;
        let Some((session, (user, groups, issued_from))) = found else { return Ok(None) };
        let grant = Grant { issued_from, ..self.grant(&user, &session, &groups) };
        Ok(Some(self.keys.issue(&user, &grant)?))
    }

    /// Ends sessions and records why (`action`, e.g. `logout`, `session.revoke`), then makes
    /// this instance refuse them at once. Returns how many ended.
    pub async fn end(
        &self,
        pool: &DbPool,
        which: Ending,
        actor: Actor,
        target: (i64, String),
        action: Action,
    ) -> anyhow::Result<usize> {
        let ended = db::run(pool, move |conn| -> anyhow::Result<usize> {
            write_transaction(conn, |conn| {
                let ended = sessions::revoke(conn, &which, now())?;
                if !ended.is_empty() {
                    audit::record(conn, &actor, action, Some((target.0, &target.1)), &describe(&ended))?;
                }
                Ok(ended.len())
            })
        })
        .await?;
        self.revocations.sync_now(pool).await?;
        Ok(ended)
    }

    /// After an account change that ended sessions in its own transaction (disable, delete,
    /// role change, password change): refuse them on this instance at once. If that read
    /// fails, the background sync still catches up within a second, so it is only logged.
    pub async fn note_revocations(&self, pool: &DbPool) {
        if let Err(error) = self.revocations.sync_now(pool).await {
            tracing::warn!(error = %format!("{error:#}"), "could not refresh the revoked-session list at once");
        }
    }

    /// A user's open sessions, newest first.
    pub async fn list(&self, pool: &DbPool, user_id: i64) -> anyhow::Result<Vec<Session>> {
        let idle = chrono::Duration::from_std(self.policy.idle_timeout)?;
        db::run(pool, move |conn| -> anyhow::Result<Vec<Session>> {
            let now = now();
            Ok(sessions::live_for_user(conn, user_id, now, now - idle)?)
        })
        .await
    }

    /// A user's open sessions, newest first, each with the names of the apps it signed in to.
    pub async fn list_with_apps(&self, pool: &DbPool, user_id: i64) -> anyhow::Result<Vec<(Session, Vec<String>)>> {
        let idle = chrono::Duration::from_std(self.policy.idle_timeout)?;
        db::run(pool, move |conn| -> anyhow::Result<_> {
            let now = now();
            let open = sessions::live_for_user(conn, user_id, now, now - idle)?;
            let sids: Vec<String> = open.iter().map(|session| session.sid.clone()).collect();
            let apps = db::oauth::apps_of_sessions(conn, &sids)?;
            Ok(open
                .into_iter()
                .map(|session| {
                    let names = apps.iter().filter(|(sid, _)| *sid == session.sid).map(|(_, name)| name.clone());
                    let names = names.collect();
                    (session, names)
                })
                .collect())
        })
        .await
    }

    fn grant<'s>(&self, user: &User, session: &'s Session, groups: &'s [String]) -> Grant<'s> {
        Grant {
            groups,
            issued_from: None,
            session_id: &session.sid,
            session_expires_at: session.expires_at.and_utc().timestamp(),
            amr: &session.amr,
            auth_time: session.proved_at().and_utc().timestamp(),
            must_enrol: self.mfa.covers(user.role == Role::Admin) && !user.mfa_enabled,
        }
    }

    /// The person proved who they are again in this session ("Confirm it's you"): its next
    /// token says so (`auth_time`). False when the session is gone.
    pub async fn note_proof(&self, pool: &DbPool, session_id: &str) -> anyhow::Result<bool> {
        let sid = session_id.to_owned();
        db::run(pool, move |conn| -> anyhow::Result<bool> { Ok(sessions::set_proved_at(conn, &sid, now())?) }).await
    }

    /// After the user enrolled a second factor in this session (proving it with a code):
    /// the session counts as signed in with both.
    pub async fn upgrade_to_second_factor(&self, pool: &DbPool, session_id: &str) -> anyhow::Result<()> {
        let sid = session_id.to_owned();
        db::run(pool, move |conn| -> anyhow::Result<()> {
            Ok(sessions::set_amr(conn, &sid, Method::PasswordAndCode.amr())?)
        })
        .await
    }

    fn tokens_for(
        &self,
        (user, groups, issued_from): &Holder,
        session: &Session,
        refresh: Option<String>,
        at: NaiveDateTime,
    ) -> anyhow::Result<SessionTokens> {
        let access =
            self.keys.issue(user, &Grant { issued_from: *issued_from, ..self.grant(user, session, groups) })?;
        let authenticated = Authenticated::from_claims(access.claims.clone(), Audience::Portcullis)
            .ok_or_else(|| anyhow::anyhow!("a token we just issued does not describe a user"))?;
        let until_end = (session.expires_at - at).to_std().unwrap_or_default();
        Ok(SessionTokens {
            access,
            refresh,
            refresh_expires_in: until_end.min(self.policy.idle_timeout),
            authenticated,
        })
    }
}

/// The user a token describes, with the names of their groups and the earliest `iat` its
/// session's renewal allows.
type Holder = (User, Vec<String>, Option<i64>);

/// The names of `user_id`'s groups, in name order.
fn group_names(conn: &mut DbConnection, user_id: i64) -> anyhow::Result<Vec<String>> {
    Ok(crate::db::groups::groups_of(conn, user_id)?.into_iter().map(|group| group.name.to_string()).collect())
}

/// What a new token of `session` for `user` says, read now.
fn holder(conn: &mut DbConnection, user: User, sid: &str) -> anyhow::Result<Holder> {
    let groups = group_names(conn, user.id)?;
    let issued_from = crate::db::groups::renewal_of(conn, sid)?.map(super::revocation::renewed_tokens_from);
    Ok((user, groups, issued_from))
}

enum RefreshStep {
    Rotated(Session, Holder),
    Forgiven(Session, Holder),
    Refused(RefreshRefusal),
}

/// The refresh decision, inside one write transaction (so concurrent refreshes of one token,
/// on any instance, are serialised by the compare-and-set on its row).
fn refresh_step(
    conn: &mut DbConnection,
    presented_hash: &str,
    replacement_hash: &str,
    policy: &SessionPolicy,
    client: &ClientInfo,
    presenter: Presenter,
) -> anyhow::Result<RefreshStep> {
    let Some((session, retired_at)) = sessions::find_by_refresh_hash(conn, presented_hash)? else {
        return Ok(RefreshStep::Refused(RefreshRefusal::Unknown));
    };
    let at = now();
    let idle_cutoff = at - chrono::Duration::from_std(policy.idle_timeout)?;
    let user = users::find_by_id(conn, session.user_id)?.filter(|user| user.is_active);
    let (Some(user), true) = (user, session.expires_at > at && session.last_used_at > idle_cutoff) else {
        sessions::revoke(conn, &Ending::BySid(session.sid.clone()), at)?;
        return Ok(RefreshStep::Refused(RefreshRefusal::Ended));
    };
    let current = retired_at.is_none() && sessions::retire_refresh_token(conn, presented_hash, at)?;
    if current {
        sessions::add_refresh_token(conn, session.id, replacement_hash, at)?;
        sessions::touch(conn, session.id, at)?;
        let holder = holder(conn, user, &session.sid)?;
        return Ok(RefreshStep::Rotated(session, holder));
    }
    // Retired by an earlier refresh, or by a concurrent one just now.
    let retired_at = retired_at.unwrap_or(at);
    if presenter == Presenter::Browser && at - retired_at <= BROWSER_REUSE_GRACE {
        let holder = holder(conn, user, &session.sid)?;
        return Ok(RefreshStep::Forgiven(session, holder));
    }
    sessions::revoke(conn, &Ending::BySid(session.sid.clone()), at)?;
    let actor = Actor::anonymous(Some(client.ip.clone()));
    let details = format!(
        "a retired refresh token was presented ({}); session {} from {} ({}) revoked",
        client.software, session.id, session.client_ip, session.user_agent
    );
    audit::record(conn, &actor, Action::SessionRefreshReused, Some((user.id, &user.username)), &details)?;
    tracing::warn!(
        event = "refresh_token_reused",
        username = %user.username,
        session = session.id,
        client_ip = %client.ip,
        "a retired refresh token was presented; the session is revoked"
    );
    Ok(RefreshStep::Refused(RefreshRefusal::Reused))
}

fn describe(ended: &[Session]) -> String {
    ended
        .iter()
        .map(|session| format!("session {} ({}, {})", session.id, session.user_agent, session.client_ip))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Refresh tokens are 256 random bits, so a plain SHA-256 is enough to make a stolen table
/// useless (no dictionary to try).
fn hash_refresh_token(token: &str) -> String {
    digest::digest(&digest::SHA256, token.as_bytes()).as_ref().iter().map(|byte| format!("{byte:02x}")).collect()
}
