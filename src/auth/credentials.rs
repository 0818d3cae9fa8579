//! Password login, shared by the form and `POST /api/token`.
use actix_web::web;
use anyhow::Context;
use secrecy::SecretString;

use super::password::PasswordHasher;
use crate::db::DbPool;
use crate::db::users::{self, User};

/// The user whose login and password match and who is active; `None` for every kind of
/// failure alike. Unknown logins cost one hash, like known ones.
pub async fn verify_credentials(
    pool: &DbPool,
    hasher: &PasswordHasher,
    login: &str,
    password: SecretString,
) -> anyhow::Result<Option<User>> {
    let pool = pool.clone();
    let login = login.to_owned();
    let user = web::block(move || -> anyhow::Result<Option<User>> {
        let mut conn = pool.get().context("no database connection available")?;
        users::find_by_login(&mut conn, &login).context("could not look up the user")
    })
    .await??;
    let stored_hash = user.as_ref().map(|user| user.password_hash.clone());
    let password_matches = hasher.verify(password, stored_hash).await?;
    Ok(user.filter(|user| password_matches && user.is_active))
}

pub async fn record_login(pool: &DbPool, user_id: i64) -> anyhow::Result<()> {
    let pool = pool.clone();
    web::block(move || -> anyhow::Result<()> {
        let mut conn = pool.get().context("no database connection available")?;
        users::record_login(&mut conn, user_id).context("could not record the login time")
    })
    .await?
}

/// A fresh session id for a new login: 128 random bits.
pub fn new_session_id() -> String {
    super::random::token_base64(16)
}
