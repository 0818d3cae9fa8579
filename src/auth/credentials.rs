//! Every password check: sign-in (the form and `POST /api/token`) and the current-password
//! check of a signed-in user. All share the throttle's counters and pauses, and failures are
//! written to the audit trail.
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;

use super::password::PasswordHasher;
use super::throttle::{Counters, LoginThrottle};
use crate::db::audit::{self, Action, Actor};
use crate::db::users::{self, User, now};
use crate::db::{self, DbPool};

pub enum LoginOutcome {
    /// Right password, active account. `device_credential` is a new credential for this
    /// account, for the client to keep (see `device.rs`).
    Success { user: Box<User>, device_credential: String },
    /// Right password, active account with a second factor: the sign-in continues with a
    /// code. This attempt stays counted on the throttle until the code is right.
    SecondFactorNeeded { user: Box<User> },
    /// Unknown user, wrong password or disabled account: callers answer alike. The known
    /// user, if any, is only for the audit trail.
    Failure { known_user: Option<(i64, String)> },
    /// Too many recent attempts on this attempt's counters: refused without checking the
    /// password. Callers answer alike whether or not the name exists.
    Throttled { retry_after: Duration },
}

/// Who is trying to sign in, as they presented themselves.
pub struct SignInAttempt<'a> {
    /// Username or e-mail, as typed.
    pub login: &'a str,
    pub client_ip: &'a str,
    /// The device credentials the client carries (cookie or `device_token`), if any.
    pub device: Option<&'a str>,
}

/// Checks a sign-in: throttle first (reserving this attempt), then the password. Unknown
/// logins cost one hash, like known ones, so timing does not tell them apart.
pub async fn verify_credentials(
    pool: &DbPool,
    hasher: &PasswordHasher,
    throttle: &Arc<LoginThrottle>,
    attempt: SignInAttempt<'_>,
    password: SecretString,
) -> anyhow::Result<LoginOutcome> {
    if let Some(retry_after) = throttle.remembered_pause(attempt.login, attempt.client_ip, attempt.device) {
        return Ok(LoginOutcome::Throttled { retry_after });
    }
    let login = attempt.login.to_owned();
    let ip = attempt.client_ip.to_owned();
    let device = attempt.device.map(str::to_owned);
    let counting = Arc::clone(throttle);
    let (user, counters, allowed) = db::run(pool, move |conn| -> anyhow::Result<_> {
        let user = users::find_by_login(conn, &login)?;
        let counters = counting.password_counters(user.as_ref().map(|user| user.id), &login, &ip, device.as_deref());
        let allowed = counting.begin(conn, &counters, now())?;
        Ok((user, counters, allowed))
    })
    .await?;
    if let Err(retry_after) = allowed {
        return Ok(LoginOutcome::Throttled { retry_after });
    }
    let stored_hash = user.as_ref().map(|user| user.password_hash.clone());
    let password_matches = hasher.verify(password, stored_hash).await?;
    let right = password_matches && user.as_ref().is_some_and(|user| user.is_active);
    if let Some(user) = user.as_ref().filter(|user| right && user.mfa_enabled) {
        // Not settled: a right password alone must not give back the account's tries, or
        // someone who knows it could guess codes without end.
        return Ok(LoginOutcome::SecondFactorNeeded { user: Box::new(user.clone()) });
    }
    settle(pool, throttle, counters, right).await?;
    Ok(match user {
        Some(user) if right => {
            let device_credential = throttle.devices().issue(user.id, chrono::Utc::now().timestamp());
            LoginOutcome::Success { user: Box::new(user), device_credential }
        }
        Some(user) => LoginOutcome::Failure { known_user: Some((user.id, user.username.to_string())) },
        None => LoginOutcome::Failure { known_user: None },
    })
}

pub enum PasswordCheck {
    Right,
    Wrong,
    Throttled { retry_after: Duration },
}

/// A signed-in user re-entering their password (before changing it): counted on the same
/// counters as signing in to that account from this client, so a stolen session cannot
/// guess the password any faster than a stranger at the login form. A wrong answer is
/// audited as `password.check_failed`.
pub async fn check_current_password(
    pool: &DbPool,
    hasher: &PasswordHasher,
    throttle: &Arc<LoginThrottle>,
    user: &User,
    password: SecretString,
    actor: Actor,
    device: Option<&str>,
) -> anyhow::Result<PasswordCheck> {
    let client_ip = actor.client_ip.clone().unwrap_or_default();
    let counters = throttle.password_counters(Some(user.id), &user.username, &client_ip, device);
    if let Err(retry_after) = begin(pool, throttle, &counters).await? {
        return Ok(PasswordCheck::Throttled { retry_after });
    }
    let right = hasher.verify(password, Some(user.password_hash.clone())).await?;
    // The counters and (for a wrong password) its audit row in one trip.
    let (throttle, target) = (Arc::clone(throttle), (user.id, user.username.to_string()));
    db::run(pool, move |conn| -> anyhow::Result<()> {
        if right {
            return Ok(throttle.succeeded(conn, &counters)?);
        }
        throttle.failed(conn, &counters, now())?;
        let details = "the current password given was wrong";
        Ok(audit::record(conn, &actor, Action::PasswordCheckFailed, Some((target.0, &target.1)), details)?)
    })
    .await?;
    Ok(if right { PasswordCheck::Right } else { PasswordCheck::Wrong })
}

/// Reserves one attempt on `counters`, or says how long to wait (see `throttle.rs`).
pub async fn begin(
    pool: &DbPool,
    throttle: &Arc<LoginThrottle>,
    counters: &Counters,
) -> anyhow::Result<Result<(), Duration>> {
    let (throttle, counters) = (Arc::clone(throttle), counters.clone());
    db::run(pool, move |conn| -> anyhow::Result<_> { Ok(throttle.begin(conn, &counters, now())?) }).await
}

/// Counts the attempt's outcome on its counters: `right` gives back what it reserved.
pub async fn settle(
    pool: &DbPool,
    throttle: &Arc<LoginThrottle>,
    counters: Counters,
    right: bool,
) -> anyhow::Result<()> {
    let throttle = Arc::clone(throttle);
    db::run(pool, move |conn| -> anyhow::Result<()> {
        if right {
            throttle.succeeded(conn, &counters)?
        } else {
            throttle.failed(conn, &counters, now())?
        }
        Ok(())
    })
    .await
}
