//! Queries on `email_links`: the links we mail (password reset, invitation, address
//! confirmation), kept as the SHA-256 of their token.
use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConnection;
use super::schema::email_links;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = email_links)]
pub struct EmailLink {
    pub token_hash: String,
    pub purpose: String,
    pub user_id: i64,
    pub new_email: Option<String>,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub used_at: Option<NaiveDateTime>,
    pub voided_at: Option<NaiveDateTime>,
}

pub struct NewLink<'a> {
    pub token_hash: &'a str,
    pub purpose: &'a str,
    pub user_id: i64,
    pub new_email: Option<&'a str>,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
}

pub fn insert(conn: &mut DbConnection, new: &NewLink<'_>) -> QueryResult<()> {
    diesel::insert_into(email_links::table)
        .values((
            email_links::token_hash.eq(new.token_hash),
            email_links::purpose.eq(new.purpose),
            email_links::user_id.eq(new.user_id),
            email_links::new_email.eq(new.new_email),
            email_links::created_at.eq(new.created_at),
            email_links::expires_at.eq(new.expires_at),
        ))
        .execute(conn)?;
    Ok(())
}

pub fn find(conn: &mut DbConnection, token_hash: &str) -> QueryResult<Option<EmailLink>> {
    email_links::table.find(token_hash).select(EmailLink::as_select()).first(conn).optional()
}

/// Marks it used, if it still is live at `now`; true if this call did (a link works once).
pub fn use_up(conn: &mut DbConnection, token_hash: &str, purpose: &str, now: NaiveDateTime) -> QueryResult<bool> {
    let updated = diesel::update(
        email_links::table
            .find(token_hash)
            .filter(email_links::purpose.eq(purpose))
            .filter(email_links::used_at.is_null())
            .filter(email_links::voided_at.is_null())
            .filter(email_links::expires_at.gt(now)),
    )
    .set(email_links::used_at.eq(now))
    .execute(conn)?;
    Ok(updated == 1)
}

/// Voids the user's live links of `purpose` (a newer link, a password change, a revocation);
/// how many there were.
pub fn void_all(conn: &mut DbConnection, user_id: i64, purpose: &str, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(
        email_links::table
            .filter(email_links::user_id.eq(user_id))
            .filter(email_links::purpose.eq(purpose))
            .filter(email_links::used_at.is_null())
            .filter(email_links::voided_at.is_null())
            .filter(email_links::expires_at.gt(now)),
    )
    .set(email_links::voided_at.eq(now))
    .execute(conn)
}

/// The user's newest link of `purpose`, whatever its state.
pub fn newest(conn: &mut DbConnection, user_id: i64, purpose: &str) -> QueryResult<Option<EmailLink>> {
    email_links::table
        .filter(email_links::user_id.eq(user_id))
        .filter(email_links::purpose.eq(purpose))
        .order(email_links::created_at.desc())
        .select(EmailLink::as_select())
        .first(conn)
        .optional()
}

/// Links created since `since` for the user (to cap how many one address gets).
pub fn count_since(conn: &mut DbConnection, user_id: i64, purpose: &str, since: NaiveDateTime) -> QueryResult<i64> {
    email_links::table
        .filter(email_links::user_id.eq(user_id))
        .filter(email_links::purpose.eq(purpose))
        .filter(email_links::created_at.gt(since))
        .count()
        .get_result(conn)
}

/// Deletes links expired before `before`.
pub fn prune(conn: &mut DbConnection, before: NaiveDateTime) -> QueryResult<usize> {
    diesel::delete(email_links::table.filter(email_links::expires_at.lt(before))).execute(conn)
}
