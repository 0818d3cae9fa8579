//! Queries on `login_throttles`: failed sign-in counters shared by every instance.
use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConnection;
use super::schema::login_throttles;

#[derive(Debug, Clone, Queryable, Insertable, AsChangeset)]
#[diesel(table_name = login_throttles, treat_none_as_null = true)]
pub struct Throttle {
    pub throttle_key: String,
    pub attempts: i32,
    pub window_started_at: NaiveDateTime,
    pub strikes: i32,
    pub paused_until: Option<NaiveDateTime>,
}

/// Inside a write transaction: makes sure a row exists for every key, then locks them (on
/// PostgreSQL the UPDATE holds the rows until commit, so concurrent attempts on one key are
/// counted one after another; SQLite's write lock already serialises them). Returns the rows.
pub fn lock(conn: &mut DbConnection, keys: &[String], now: NaiveDateTime) -> QueryResult<Vec<Throttle>> {
    for key in keys {
        let fresh =
            Throttle { throttle_key: key.clone(), attempts: 0, window_started_at: now, strikes: 0, paused_until: None };
        // `ON CONFLICT DO NOTHING` is not in MultiConnection's common subset; each backend has it.
        let insert = diesel::insert_into(login_throttles::table).values(&fresh);
        match conn {
            DbConnection::Sqlite(sqlite) => insert.on_conflict_do_nothing().execute(sqlite)?,
            DbConnection::Postgres(pg) => insert.on_conflict_do_nothing().execute(pg)?,
        };
    }
    // One row at a time in key order: every writer of several counters takes their locks in
    // this one order, so two sign-ins racing on the same counters never deadlock.
    let mut ordered: Vec<&String> = keys.iter().collect();
    ordered.sort();
    for key in ordered {
        diesel::update(login_throttles::table.find(key))
            .set(login_throttles::attempts.eq(login_throttles::attempts))
            .execute(conn)?;
    }
    login_throttles::table.filter(login_throttles::throttle_key.eq_any(keys)).load(conn)
}

pub fn save(conn: &mut DbConnection, throttle: &Throttle) -> QueryResult<()> {
    diesel::update(login_throttles::table.find(&throttle.throttle_key)).set(throttle).execute(conn)?;
    Ok(())
}

/// The rows of these keys that exist, read without locking or writing anything.
pub fn find_many(conn: &mut DbConnection, keys: &[String]) -> QueryResult<Vec<Throttle>> {
    login_throttles::table.filter(login_throttles::throttle_key.eq_any(keys)).load(conn)
}

pub fn count(conn: &mut DbConnection) -> QueryResult<i64> {
    login_throttles::table.count().get_result(conn)
}

pub fn find(conn: &mut DbConnection, key: &str) -> QueryResult<Option<Throttle>> {
    login_throttles::table.find(key).first(conn).optional()
}

/// Gives back one attempt a key had reserved (a sign-in that turned out to be right).
pub fn refund(conn: &mut DbConnection, key: &str) -> QueryResult<()> {
    diesel::update(login_throttles::table.find(key).filter(login_throttles::attempts.gt(0)))
        .set(login_throttles::attempts.eq(login_throttles::attempts - 1))
        .execute(conn)?;
    Ok(())
}

/// Returns whether there was anything to clear.
pub fn clear(conn: &mut DbConnection, key: &str) -> QueryResult<bool> {
    Ok(diesel::delete(login_throttles::table.find(key)).execute(conn)? > 0)
}

/// Forgets counters whose window started before `cutoff` and whose pause (if any) ended
/// before it: nothing they hold still counts.
pub fn prune(conn: &mut DbConnection, cutoff: NaiveDateTime) -> QueryResult<usize> {
    diesel::delete(
        login_throttles::table
            .filter(login_throttles::window_started_at.lt(cutoff))
            .filter(login_throttles::paused_until.is_null().or(login_throttles::paused_until.lt(cutoff))),
    )
    .execute(conn)
}
