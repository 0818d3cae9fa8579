//! Queries on `signing_keys`: the keys access tokens are signed with, shared by every instance.
use chrono::NaiveDateTime;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;

use super::DbConnection;
use super::schema::signing_keys;

/// A stored key. The private half is sealed; `public_key` is its raw public bytes
/// (base64url): Ed25519's 32 bytes, or P-256's uncompressed point.
#[derive(Clone, Queryable, Selectable)]
#[diesel(table_name = signing_keys)]
pub struct StoredKey {
    pub id: i64,
    pub kid: String,
    pub alg: String,
    pub sealed_private_key: Option<String>,
    pub public_key: Option<String>,
    pub published_at: NaiveDateTime,
    pub signs_from: NaiveDateTime,
    pub retired_at: Option<NaiveDateTime>,
    pub drop_after: Option<NaiveDateTime>,
    /// `access` or `id` (see `auth::keys::KeyPurpose`).
    pub purpose: String,
}

#[derive(Insertable)]
#[diesel(table_name = signing_keys)]
pub struct NewKey<'a> {
    pub kid: &'a str,
    pub alg: &'a str,
    pub sealed_private_key: Option<&'a str>,
    pub public_key: Option<&'a str>,
    pub published_at: NaiveDateTime,
    pub signs_from: NaiveDateTime,
    pub retired_at: Option<NaiveDateTime>,
    pub drop_after: Option<NaiveDateTime>,
    pub purpose: &'a str,
}

/// Inside a write transaction: one writer at a time decides which key signs (two instances
/// starting together must not both create one). SQLite's write lock already serialises writers.
pub fn lock(conn: &mut DbConnection) -> QueryResult<()> {
    match conn {
        DbConnection::Postgres(pg) => pg.batch_execute("LOCK TABLE signing_keys IN SHARE ROW EXCLUSIVE MODE"),
        DbConnection::Sqlite(_) => Ok(()),
    }
}

/// Every key not yet dropped at `now`, oldest first.
pub fn live(conn: &mut DbConnection, now: NaiveDateTime) -> QueryResult<Vec<StoredKey>> {
    signing_keys::table
        .filter(signing_keys::drop_after.is_null().or(signing_keys::drop_after.gt(now)))
        .order(signing_keys::id)
        .select(StoredKey::as_select())
        .load(conn)
}

/// Every key, dropped ones too (for `portcullis keys list` and resealing).
pub fn all(conn: &mut DbConnection) -> QueryResult<Vec<StoredKey>> {
    signing_keys::table.order(signing_keys::id).select(StoredKey::as_select()).load(conn)
}

pub fn insert(conn: &mut DbConnection, new: &NewKey<'_>) -> QueryResult<()> {
    diesel::insert_into(signing_keys::table).values(new).execute(conn)?;
    Ok(())
}

/// Stops a key signing at `at`; it stays published and verifies until `drop_after`.
pub fn retire(conn: &mut DbConnection, id: i64, at: NaiveDateTime, drop_after: NaiveDateTime) -> QueryResult<()> {
    diesel::update(signing_keys::table.find(id))
        .set((signing_keys::retired_at.eq(at), signing_keys::drop_after.eq(drop_after)))
        .execute(conn)?;
    Ok(())
}

pub fn reseal(conn: &mut DbConnection, id: i64, sealed_private_key: &str) -> QueryResult<()> {
    diesel::update(signing_keys::table.find(id))
        .set(signing_keys::sealed_private_key.eq(sealed_private_key))
        .execute(conn)?;
    Ok(())
}

/// Deletes keys dropped before `now`; returns how many.
pub fn delete_dropped(conn: &mut DbConnection, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::delete(signing_keys::table.filter(signing_keys::drop_after.le(now))).execute(conn)
}
