//! Password login, shared by the form and `POST /api/token`, and its audit record.
use std::time::Duration;

use secrecy::SecretString;

use super::password::PasswordHasher;
use super::throttle::{self, account_key, address_key};
use crate::config::ThrottlePolicy;
use crate::db::audit::{self, Actor};
use crate::db::users::{self, User, now};
use crate::db::{self, DbPool};

pub enum LoginOutcome {
    Success(User),
    /// Unknown user, wrong password or disabled account: callers answer alike. The known
    /// user, if any, is only for the audit trail.
    Failure {
        known_user: Option<(i64, String)>,
    },
    /// Too many recent attempts for this name or address: refused without checking the
    /// password. Callers answer alike whether or not the name exists.
    Throttled {
        retry_after: Duration,
    },
}

/// Checks a sign-in: throttle first (counting this attempt), then the password. Unknown
/// logins cost one hash, like known ones, so timing does not tell them apart.
pub async fn verify_credentials(
    pool: &DbPool,
    hasher: &PasswordHasher,
    throttle: &ThrottlePolicy,
    login: &str,
    password: SecretString,
    client_ip: &str,
) -> anyhow::Result<LoginOutcome> {
    let (login, address, policy) = (login.to_owned(), address_key(client_ip), *throttle);
    let checked = db::run(pool, move |conn| -> anyhow::Result<(Option<User>, String, Result<(), Duration>)> {
        let user = users::find_by_login(conn, &login)?;
        let account = account_key(user.as_ref().map(|user| user.id), &login);
        let allowed = throttle::begin_attempt(conn, &policy, &account, &address, now())?;
        Ok((user, account, allowed))
    })
    .await?;
    let (user, account, allowed) = checked;
    if let Err(retry_after) = allowed {
        return Ok(LoginOutcome::Throttled { retry_after });
    }
    let stored_hash = user.as_ref().map(|user| user.password_hash.clone());
    let password_matches = hasher.verify(password, stored_hash).await?;
    Ok(match user {
        Some(user) if password_matches && user.is_active => {
            db::run(pool, move |conn| -> anyhow::Result<()> { Ok(throttle::succeeded(conn, &account)?) }).await?;
            LoginOutcome::Success(user)
        }
        Some(user) => LoginOutcome::Failure { known_user: Some((user.id, user.username)) },
        None => LoginOutcome::Failure { known_user: None },
    })
}

/// Writes `login.failed` (a success is recorded by `Sessions::start`, with the session).
pub async fn record_failure(
    pool: &DbPool,
    known_user: Option<(i64, String)>,
    attempted_login: &str,
    client_ip: String,
    reason: &'static str,
) -> anyhow::Result<()> {
    let attempted: String = attempted_login.chars().take(64).collect();
    db::run(pool, move |conn| -> anyhow::Result<()> {
        let target = known_user.as_ref().map(|(id, name)| (*id, name.as_str()));
        let details = format!("{reason}; login: {attempted}");
        Ok(audit::record(conn, &Actor::anonymous(Some(client_ip)), "login.failed", target, &details)?)
    })
    .await
}
