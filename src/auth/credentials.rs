//! Password login, shared by the form and `POST /api/token`, and its audit record.
use secrecy::SecretString;

use super::password::PasswordHasher;
use crate::db::audit::{self, Actor};
use crate::db::users::{self, User};
use crate::db::{self, DbPool};

pub enum LoginOutcome {
    Success(User),
    /// Unknown user, wrong password or disabled account: callers answer alike. The known
    /// user, if any, is only for the audit trail.
    Failure {
        known_user: Option<(i64, String)>,
    },
}

/// Unknown logins cost one hash, like known ones, so timing does not tell them apart.
pub async fn verify_credentials(
    pool: &DbPool,
    hasher: &PasswordHasher,
    login: &str,
    password: SecretString,
) -> anyhow::Result<LoginOutcome> {
    let login = login.to_owned();
    let user =
        db::run(pool, move |conn| -> anyhow::Result<Option<User>> { Ok(users::find_by_login(conn, &login)?) }).await?;
    let stored_hash = user.as_ref().map(|user| user.password_hash.clone());
    let password_matches = hasher.verify(password, stored_hash).await?;
    Ok(match user {
        Some(user) if password_matches && user.is_active => LoginOutcome::Success(user),
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
