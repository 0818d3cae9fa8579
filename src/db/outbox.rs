//! Queries on `outbox`: mail written with the change that causes it, claimed by one sender
//! at a time (`FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite's write lock serialises senders).
use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::outbox;
use super::{DbConnection, write_transaction};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = outbox)]
pub struct OutboxRow {
    pub id: i64,
    pub created_at: NaiveDateTime,
    pub kind: String,
    pub recipient: String,
    pub subject: String,
    pub sealed_body: String,
    pub attempts: i32,
    pub next_attempt_at: NaiveDateTime,
    pub claimed_until: Option<NaiveDateTime>,
    pub sent_at: Option<NaiveDateTime>,
    pub failed_at: Option<NaiveDateTime>,
    pub last_error: Option<String>,
}

pub struct NewMessage<'a> {
    pub kind: &'a str,
    pub recipient: &'a str,
    pub subject: &'a str,
    pub sealed_body: &'a str,
    pub created_at: NaiveDateTime,
}

pub fn insert(conn: &mut DbConnection, new: &NewMessage<'_>) -> QueryResult<i64> {
    diesel::insert_into(outbox::table)
        .values((
            outbox::created_at.eq(new.created_at),
            outbox::kind.eq(new.kind),
            outbox::recipient.eq(new.recipient),
            outbox::subject.eq(new.subject),
            outbox::sealed_body.eq(new.sealed_body),
            outbox::attempts.eq(0),
            outbox::next_attempt_at.eq(new.created_at),
        ))
        .returning(outbox::id)
        .get_result(conn)
}

/// How many messages of `kind` went (or are going) to `recipient` since `since`.
pub fn count_recent(conn: &mut DbConnection, kind: &str, recipient: &str, since: NaiveDateTime) -> QueryResult<i64> {
    outbox::table
        .filter(outbox::recipient.eq(recipient))
        .filter(outbox::kind.eq(kind))
        .filter(outbox::created_at.gt(since))
        .count()
        .get_result(conn)
}

/// Whether any message is due (a read: an idle sender takes no write lock).
pub fn any_due(conn: &mut DbConnection, now: NaiveDateTime) -> QueryResult<bool> {
    let due = outbox::table
        .filter(outbox::sent_at.is_null())
        .filter(outbox::failed_at.is_null())
        .filter(outbox::next_attempt_at.le(now))
        .filter(outbox::claimed_until.is_null().or(outbox::claimed_until.lt(now)));
    diesel::select(diesel::dsl::exists(due)).get_result(conn)
}

/// Takes the next message that is due and nobody is delivering, until `lease_until`; counts
/// the attempt. `None` when nothing is due.
pub fn claim_next(
    conn: &mut DbConnection,
    now: NaiveDateTime,
    lease_until: NaiveDateTime,
) -> QueryResult<Option<OutboxRow>> {
    write_transaction(conn, |conn| {
        let due = outbox::table
            .filter(outbox::sent_at.is_null())
            .filter(outbox::failed_at.is_null())
            .filter(outbox::next_attempt_at.le(now))
            .filter(outbox::claimed_until.is_null().or(outbox::claimed_until.lt(now)))
            .order((outbox::next_attempt_at, outbox::id))
            .select(outbox::id);
        let id: Option<i64> = match conn {
            // Another instance's claim in flight is skipped, not waited for.
            DbConnection::Postgres(pg) => due.for_update().skip_locked().first(pg).optional()?,
            DbConnection::Sqlite(sqlite) => due.first(sqlite).optional()?,
        };
        let Some(id) = id else { return Ok(None) };
        diesel::update(outbox::table.find(id))
            .set((outbox::claimed_until.eq(lease_until), outbox::attempts.eq(outbox::attempts + 1)))
            .execute(conn)?;
        outbox::table.find(id).select(OutboxRow::as_select()).first(conn).optional()
    })
}

/// Delivered: the body (which may hold a live link) is dropped.
pub fn mark_sent(conn: &mut DbConnection, id: i64, now: NaiveDateTime) -> QueryResult<()> {
    diesel::update(outbox::table.find(id))
        .set((
            outbox::sent_at.eq(now),
            outbox::claimed_until.eq(None::<NaiveDateTime>),
            outbox::sealed_body.eq(""),
            outbox::last_error.eq(None::<String>),
        ))
        .execute(conn)?;
    Ok(())
}

/// Not delivered this time: try again at `next_attempt_at`.
pub fn mark_retry(conn: &mut DbConnection, id: i64, error: &str, next_attempt_at: NaiveDateTime) -> QueryResult<()> {
    diesel::update(outbox::table.find(id))
        .set((
            outbox::next_attempt_at.eq(next_attempt_at),
            outbox::claimed_until.eq(None::<NaiveDateTime>),
            outbox::last_error.eq(error),
        ))
        .execute(conn)?;
    Ok(())
}

/// Given up on: the body is dropped, the error kept for the admin page.
pub fn mark_failed(conn: &mut DbConnection, id: i64, error: &str, now: NaiveDateTime) -> QueryResult<()> {
    diesel::update(outbox::table.find(id))
        .set((
            outbox::failed_at.eq(now),
            outbox::claimed_until.eq(None::<NaiveDateTime>),
            outbox::sealed_body.eq(""),
            outbox::last_error.eq(error),
        ))
        .execute(conn)?;
    Ok(())
}

/// Lets go of every claim: on a single SQLite instance at start, the claims left by a
/// process that was killed mid-delivery (nobody else can be delivering).
pub fn release_claims(conn: &mut DbConnection) -> QueryResult<usize> {
    diesel::update(outbox::table.filter(outbox::claimed_until.is_not_null()).filter(outbox::sent_at.is_null()))
        .set(outbox::claimed_until.eq(None::<NaiveDateTime>))
        .execute(conn)
}

/// The newest messages, for the admin page (`state`: pending, failing, sent, failed, or all).
pub fn recent(conn: &mut DbConnection, state: &str, limit: i64) -> QueryResult<Vec<OutboxRow>> {
    let mut query = outbox::table.select(OutboxRow::as_select()).order(outbox::id.desc()).limit(limit).into_boxed();
    query = match state {
        "pending" => query.filter(outbox::sent_at.is_null()).filter(outbox::failed_at.is_null()),
        "failing" => {
            query.filter(outbox::sent_at.is_null()).filter(outbox::failed_at.is_null()).filter(outbox::attempts.gt(0))
        }
        "sent" => query.filter(outbox::sent_at.is_not_null()),
        "failed" => query.filter(outbox::failed_at.is_not_null()),
        _ => query,
    };
    query.load(conn)
}

/// Messages waiting (not sent, not given up), and of those the ones that failed at least once.
pub fn backlog(conn: &mut DbConnection) -> QueryResult<(i64, i64)> {
    let waiting = outbox::table.filter(outbox::sent_at.is_null()).filter(outbox::failed_at.is_null());
    let pending = waiting.count().get_result(conn)?;
    let failing = waiting.filter(outbox::attempts.gt(0)).count().get_result(conn)?;
    Ok((pending, failing))
}

/// Deletes delivered or abandoned messages older than `before` (the outbox is not an archive).
pub fn prune(conn: &mut DbConnection, before: NaiveDateTime) -> QueryResult<usize> {
    diesel::delete(
        outbox::table
            .filter(outbox::created_at.lt(before))
            .filter(outbox::sent_at.is_not_null().or(outbox::failed_at.is_not_null())),
    )
    .execute(conn)
}
