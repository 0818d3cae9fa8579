//! Password login, shared by the form and `POST /api/token`, and its audit record.
use secrecy::SecretString;

use super::password::PasswordHasher;
use crate::db::audit::{self, Actor};
use crate::db::users::{self, User};
use crate::db::{self, DbPool, write_transaction};

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

/// Writes `login.ok` (with the last-login time, in one transaction) or `login.failed`.
pub async fn record_outcome(
    pool: &DbPool,
    outcome: &LoginOutcome,
    attempted_login: &str,
    client_ip: String,
    via: &'static str,
) -> anyhow::Result<()> {
    let attempted: String = attempted_login.chars().take(64).collect();
    let (target, success) = match outcome {
        LoginOutcome::Success(user) => (Some((user.id, user.username.clone())), true),
        LoginOutcome::Failure { known_user } => (known_user.clone(), false),
    };
    db::run(pool, move |conn| -> anyhow::Result<()> {
        let actor = match (&target, success) {
            (Some((id, name)), true) => Actor { user: Some((*id, name.clone())), client_ip: Some(client_ip) },
            _ => Actor::anonymous(Some(client_ip)),
        };
        let target_ref = target.as_ref().map(|(id, name)| (*id, name.as_str()));
        write_transaction(conn, |conn| -> anyhow::Result<()> {
            if success {
                let (id, _) = target.as_ref().expect("a successful login has a user");
                users::record_login(conn, *id)?;
                audit::record(conn, &actor, "login.ok", target_ref, &format!("via {via}"))?;
            } else {
                audit::record(conn, &actor, "login.failed", target_ref, &format!("via {via}; login: {attempted}"))?;
            }
            Ok(())
        })
    })
    .await
}

/// A fresh session id for a new login: 128 random bits.
pub fn new_session_id() -> String {
    super::random::token_base64(16)
}
