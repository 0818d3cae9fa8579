//! Queries on `sign_in_challenges`: sign-ins whose password was right and whose second step is
//! pending.
use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConnection;
use super::schema::sign_in_challenges;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = sign_in_challenges)]
pub struct Challenge {
    pub token_hash: String,
    pub user_id: i64,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    /// Wrong codes given so far.
    pub failures: i32,
    /// `form` or `api`.
    pub via: String,
    /// Where the browser goes afterwards (empty: the default landing page).
    pub next_path: String,
}

#[derive(Insertable)]
#[diesel(table_name = sign_in_challenges)]
pub struct NewChallenge<'a> {
    pub token_hash: &'a str,
    pub user_id: i64,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub via: &'a str,
    pub next_path: &'a str,
}

pub fn insert(conn: &mut DbConnection, new: &NewChallenge<'_>) -> QueryResult<()> {
    diesel::insert_into(sign_in_challenges::table).values(new).execute(conn)?;
    Ok(())
}

/// The challenge, if it exists and has not expired at `now`.
pub fn find_live(conn: &mut DbConnection, token_hash: &str, now: NaiveDateTime) -> QueryResult<Option<Challenge>> {
    sign_in_challenges::table
        .find(token_hash)
        .filter(sign_in_challenges::expires_at.gt(now))
        .select(Challenge::as_select())
        .first(conn)
        .optional()
}

/// Deletes it; true if this call did (so only one request can complete a challenge).
pub fn delete(conn: &mut DbConnection, token_hash: &str) -> QueryResult<bool> {
    Ok(diesel::delete(sign_in_challenges::table.find(token_hash)).execute(conn)? == 1)
}

/// Counts a wrong answer; returns the new count, or `None` if the challenge is gone.
pub fn add_failure(conn: &mut DbConnection, token_hash: &str) -> QueryResult<Option<i32>> {
    diesel::update(sign_in_challenges::table.find(token_hash))
        .set(sign_in_challenges::failures.eq(sign_in_challenges::failures + 1))
        .returning(sign_in_challenges::failures)
        .get_result(conn)
        .optional()
}

/// Deletes all but the user's `keep` newest challenges.
pub fn keep_newest(conn: &mut DbConnection, user_id: i64, keep: i64) -> QueryResult<usize> {
    let older: Vec<String> = sign_in_challenges::table
        .filter(sign_in_challenges::user_id.eq(user_id))
        .order(sign_in_challenges::created_at.desc())
        .offset(keep)
        .select(sign_in_challenges::token_hash)
        .load(conn)?;
    diesel::delete(sign_in_challenges::table.filter(sign_in_challenges::token_hash.eq_any(older))).execute(conn)
}

pub fn delete_all_of_user(conn: &mut DbConnection, user_id: i64) -> QueryResult<usize> {
    diesel::delete(sign_in_challenges::table.filter(sign_in_challenges::user_id.eq(user_id))).execute(conn)
}

/// Housekeeping: expired challenges.
pub fn prune(conn: &mut DbConnection, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::delete(sign_in_challenges::table.filter(sign_in_challenges::expires_at.le(now))).execute(conn)
}
