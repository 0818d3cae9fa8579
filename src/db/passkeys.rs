//! Queries on `passkeys` and `passkey_ceremonies`.
use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConnection;
use super::schema::{passkey_ceremonies_used, passkeys};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = passkeys)]
pub struct PasskeyRow {
    pub id: i64,
    pub user_id: i64,
    pub credential_id: String,
    pub user_handle: String,
    pub name: String,
    /// webauthn-rs's `Passkey`, as JSON.
    pub passkey: String,
    pub created_at: NaiveDateTime,
    pub last_used_at: Option<NaiveDateTime>,
}

pub struct NewPasskey<'a> {
    pub user_id: i64,
    pub credential_id: &'a str,
    pub user_handle: &'a str,
    pub name: &'a str,
    pub passkey: &'a str,
    pub created_at: NaiveDateTime,
}

pub fn of_user(conn: &mut DbConnection, user_id: i64) -> QueryResult<Vec<PasskeyRow>> {
    passkeys::table.filter(passkeys::user_id.eq(user_id)).order(passkeys::id).select(PasskeyRow::as_select()).load(conn)
}

pub fn count_of_user(conn: &mut DbConnection, user_id: i64) -> QueryResult<i64> {
    passkeys::table.filter(passkeys::user_id.eq(user_id)).count().get_result(conn)
}

pub fn by_credential_id(conn: &mut DbConnection, credential_id: &str) -> QueryResult<Option<PasskeyRow>> {
    passkeys::table
        .filter(passkeys::credential_id.eq(credential_id))
        .select(PasskeyRow::as_select())
        .first(conn)
        .optional()
}

/// False if that credential is registered already (to anyone).
pub fn insert(conn: &mut DbConnection, new: &NewPasskey<'_>) -> QueryResult<bool> {
    if by_credential_id(conn, new.credential_id)?.is_some() {
        return Ok(false);
    }
    diesel::insert_into(passkeys::table)
        .values((
            passkeys::user_id.eq(new.user_id),
            passkeys::credential_id.eq(new.credential_id),
            passkeys::user_handle.eq(new.user_handle),
            passkeys::name.eq(new.name),
            passkeys::passkey.eq(new.passkey),
            passkeys::created_at.eq(new.created_at),
        ))
        .execute(conn)?;
    Ok(true)
}

/// After a sign-in with it: the new counter state and when.
pub fn record_use(conn: &mut DbConnection, id: i64, passkey: Option<&str>, at: NaiveDateTime) -> QueryResult<()> {
    match passkey {
        Some(updated) => diesel::update(passkeys::table.find(id))
            .set((passkeys::passkey.eq(updated), passkeys::last_used_at.eq(at)))
            .execute(conn)?,
        None => diesel::update(passkeys::table.find(id)).set(passkeys::last_used_at.eq(at)).execute(conn)?,
    };
    Ok(())
}

pub fn rename(conn: &mut DbConnection, user_id: i64, id: i64, name: &str) -> QueryResult<bool> {
    let updated = diesel::update(passkeys::table.find(id).filter(passkeys::user_id.eq(user_id)))
        .set(passkeys::name.eq(name))
        .execute(conn)?;
    Ok(updated == 1)
}

pub fn delete(conn: &mut DbConnection, user_id: i64, id: i64) -> QueryResult<Option<String>> {
    diesel::delete(passkeys::table.find(id).filter(passkeys::user_id.eq(user_id)))
        .returning(passkeys::name)
        .get_result(conn)
        .optional()
}

pub fn delete_all_of_user(conn: &mut DbConnection, user_id: i64) -> QueryResult<usize> {
    diesel::delete(passkeys::table.filter(passkeys::user_id.eq(user_id))).execute(conn)
}

/// Marks a ceremony completed; false if it was already (a replay). Kept until `expires_at`.
pub fn mark_ceremony_used(conn: &mut DbConnection, token_hash: &str, expires_at: NaiveDateTime) -> QueryResult<bool> {
    let seen = passkey_ceremonies_used::table.find(token_hash).count().get_result::<i64>(conn)?;
    if seen > 0 {
        return Ok(false);
    }
    match diesel::insert_into(passkey_ceremonies_used::table)
        .values((
            passkey_ceremonies_used::token_hash.eq(token_hash),
            passkey_ceremonies_used::expires_at.eq(expires_at),
        ))
        .execute(conn)
    {
        Ok(_) => Ok(true),
        // The same ceremony completed by a concurrent request a moment ago.
        Err(diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _)) => Ok(false),
        Err(error) => Err(error),
    }
}

pub fn prune_ceremonies(conn: &mut DbConnection, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::delete(passkey_ceremonies_used::table.filter(passkey_ceremonies_used::expires_at.le(now))).execute(conn)
}
