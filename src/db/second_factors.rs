//! Queries on second factors: authenticator apps (`totp_factors`) and recovery codes.
use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConnection;
use super::schema::{recovery_codes, totp_factors, users};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = totp_factors)]
pub struct TotpFactor {
    pub user_id: i64,
    pub sealed_secret: String,
    pub created_at: NaiveDateTime,
    /// `None` while enrolment waits for its first code.
    pub confirmed_at: Option<NaiveDateTime>,
    pub last_used_step: i64,
}

pub fn find_totp(conn: &mut DbConnection, user_id: i64) -> QueryResult<Option<TotpFactor>> {
    totp_factors::table.find(user_id).select(TotpFactor::as_select()).first(conn).optional()
}

/// Starts (or restarts) an enrolment: a new unconfirmed secret. Never replaces a confirmed one.
pub fn put_pending_totp(conn: &mut DbConnection, user_id: i64, sealed: &str, at: NaiveDateTime) -> QueryResult<bool> {
    if find_totp(conn, user_id)?.is_some_and(|factor| factor.confirmed_at.is_some()) {
        return Ok(false);
    }
    diesel::delete(totp_factors::table.find(user_id)).execute(conn)?;
    let inserted = diesel::insert_into(totp_factors::table)
        .values((
            totp_factors::user_id.eq(user_id),
            totp_factors::sealed_secret.eq(sealed),
            totp_factors::created_at.eq(at),
            totp_factors::last_used_step.eq(0_i64),
        ))
        .execute(conn)?;
    Ok(inserted == 1)
}

/// Turns a pending secret on, recording the step of the code that confirmed it.
pub fn confirm_totp(conn: &mut DbConnection, user_id: i64, step: i64, at: NaiveDateTime) -> QueryResult<bool> {
    let updated = diesel::update(
        totp_factors::table.filter(totp_factors::user_id.eq(user_id)).filter(totp_factors::confirmed_at.is_null()),
    )
    .set((totp_factors::confirmed_at.eq(at), totp_factors::last_used_step.eq(step)))
    .execute(conn)?;
    Ok(updated == 1)
}

/// The compare-and-set that makes a code single-use: true only if `step` is later than the
/// last step used, and it is now the last one (so a concurrent request with the same code, on
/// any instance, gets false).
pub fn advance_step(conn: &mut DbConnection, user_id: i64, step: i64) -> QueryResult<bool> {
    let updated = diesel::update(
        totp_factors::table
            .filter(totp_factors::user_id.eq(user_id))
            .filter(totp_factors::confirmed_at.is_not_null())
            .filter(totp_factors::last_used_step.lt(step)),
    )
    .set(totp_factors::last_used_step.eq(step))
    .execute(conn)?;
    Ok(updated == 1)
}

pub fn reseal_totp(conn: &mut DbConnection, user_id: i64, sealed: &str) -> QueryResult<()> {
    diesel::update(totp_factors::table.find(user_id)).set(totp_factors::sealed_secret.eq(sealed)).execute(conn)?;
    Ok(())
}

/// Every stored secret, for resealing after a secret rotation.
pub fn all_totp(conn: &mut DbConnection) -> QueryResult<Vec<TotpFactor>> {
    totp_factors::table.select(TotpFactor::as_select()).load(conn)
}

pub fn delete_totp(conn: &mut DbConnection, user_id: i64) -> QueryResult<bool> {
    Ok(diesel::delete(totp_factors::table.find(user_id)).execute(conn)? == 1)
}

/// Replaces the user's recovery codes (used or not) with `hashes`.
pub fn replace_recovery_codes(conn: &mut DbConnection, user_id: i64, hashes: &[String]) -> QueryResult<()> {
    delete_recovery_codes(conn, user_id)?;
    for hash in hashes {
        diesel::insert_into(recovery_codes::table)
            .values((recovery_codes::user_id.eq(user_id), recovery_codes::code_hash.eq(hash)))
            .execute(conn)?;
    }
    Ok(())
}

/// Marks an unused code used; false if there is no such unused code (wrong, or used already,
/// perhaps a moment ago by a concurrent request).
pub fn use_recovery_code(conn: &mut DbConnection, user_id: i64, hash: &str, at: NaiveDateTime) -> QueryResult<bool> {
    let updated = diesel::update(
        recovery_codes::table
            .filter(recovery_codes::user_id.eq(user_id))
            .filter(recovery_codes::code_hash.eq(hash))
            .filter(recovery_codes::used_at.is_null()),
    )
    .set(recovery_codes::used_at.eq(at))
    .execute(conn)?;
    Ok(updated == 1)
}

pub fn recovery_codes_left(conn: &mut DbConnection, user_id: i64) -> QueryResult<i64> {
    recovery_codes::table
        .filter(recovery_codes::user_id.eq(user_id))
        .filter(recovery_codes::used_at.is_null())
        .count()
        .get_result(conn)
}

pub fn delete_recovery_codes(conn: &mut DbConnection, user_id: i64) -> QueryResult<usize> {
    diesel::delete(recovery_codes::table.filter(recovery_codes::user_id.eq(user_id))).execute(conn)
}

/// What second factors a user has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inventory {
    /// A confirmed authenticator app.
    pub app: bool,
    pub passkeys: i64,
    pub recovery_codes_left: i64,
}

impl Inventory {
    /// Something to sign in with as a second factor (recovery codes only back these up).
    pub fn any(&self) -> bool {
        self.app || self.passkeys > 0
    }
}

pub fn inventory(conn: &mut DbConnection, user_id: i64) -> QueryResult<Inventory> {
    Ok(Inventory {
        app: find_totp(conn, user_id)?.is_some_and(|factor| factor.confirmed_at.is_some()),
        passkeys: super::passkeys::count_of_user(conn, user_id)?,
        recovery_codes_left: recovery_codes_left(conn, user_id)?,
    })
}

/// Keeps `users.mfa_enabled` in step with the user's factors.
pub fn set_enabled(conn: &mut DbConnection, user_id: i64, enabled: bool) -> QueryResult<()> {
    diesel::update(users::table.find(user_id)).set(users::mfa_enabled.eq(enabled)).execute(conn)?;
    Ok(())
}
