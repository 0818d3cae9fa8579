//! Queries on `oauth_logout_deliveries`: the back-channel logout queue (OpenID Connect
//! Back-Channel Logout 1.0). A row is written in the transaction that ends a session, one per
//! app the session signed in to, and claimed by one instance at a time (`FOR UPDATE SKIP
//! LOCKED` on PostgreSQL; SQLite's write lock serialises deliverers), like the mail outbox.
use std::cell::Cell;
use std::sync::LazyLock;

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{oauth_clients, oauth_logout_deliveries as deliveries};
use super::{DbConnection, write_transaction};

/// Rows per statement (SQLite allows 32,766 bound values; a row binds six).
const BATCH: usize = 500;

thread_local! {
    /// Deliveries were queued on this thread since the last [`ring_if_queued`].
    static QUEUED: Cell<bool> = const { Cell::new(false) };
}

/// Rung (the count goes up) when this process queued deliveries, after the transaction that
/// queued them: each instance's deliverer in this process looks at once instead of at its
/// next poll. Other processes find the rows when they poll.
pub static DOORBELL: LazyLock<tokio::sync::watch::Sender<u64>> = LazyLock::new(|| tokio::sync::watch::Sender::new(0));

/// Deliveries (or ended sessions to deliver for) were queued on this thread.
pub fn note_queued() {
    QUEUED.with(|flag| flag.set(true));
}

/// Rings the doorbell if this thread queued deliveries (called once the work, and so its
/// transaction, is over).
pub fn ring_if_queued() {
    if QUEUED.with(|queued| queued.replace(false)) {
        DOORBELL.send_modify(|count| *count = count.wrapping_add(1));
    }
}

/// A session ended: queue a logout token for each of `(session_sid, user_id, client_id)` whose
/// app has a back-channel address. A pair queued before (the session signed in to the app again
/// after a disconnect) is queued afresh. Returns how many were queued.
pub fn queue(conn: &mut DbConnection, ended: &[(String, i64, i64)], at: NaiveDateTime) -> QueryResult<usize> {
    if ended.is_empty() {
        return Ok(0);
    }
    let mut clients: Vec<i64> = ended.iter().map(|(_, _, client)| *client).collect();
    clients.sort_unstable();
    clients.dedup();
    let listening: Vec<i64> = oauth_clients::table
        .filter(oauth_clients::id.eq_any(&clients))
        .filter(oauth_clients::backchannel_logout_uri.ne(""))
        .select(oauth_clients::id)
        .load(conn)?;
    let mut wanted: Vec<&(String, i64, i64)> =
        ended.iter().filter(|(_, _, client)| listening.contains(client)).collect();
    wanted.sort_unstable();
    wanted.dedup();
    if wanted.is_empty() {
        return Ok(0);
    }
    // A pair queued before goes (delivered long ago, or still pending: the new row replaces it).
    let mut sids: Vec<&str> = wanted.iter().map(|(sid, _, _)| sid.as_str()).collect();
    sids.dedup();
    for sid in sids {
        let of_sid: Vec<i64> = wanted.iter().filter(|(s, _, _)| s == sid).map(|(_, _, client)| *client).collect();
        diesel::delete(
            deliveries::table.filter(deliveries::session_sid.eq(sid)).filter(deliveries::client_id.eq_any(of_sid)),
        )
        .execute(conn)?;
    }
    let rows: Vec<_> = wanted
        .iter()
        .map(|(sid, user_id, client_id)| {
            (
                deliveries::client_id.eq(*client_id),
                deliveries::session_sid.eq(sid.as_str()),
                deliveries::user_id.eq(*user_id),
                deliveries::created_at.eq(at),
                deliveries::attempts.eq(0),
                deliveries::next_attempt_at.eq(at),
            )
        })
        .collect();
    let mut queued = 0;
    for rows in rows.chunks(BATCH) {
        queued += match conn {
            DbConnection::Sqlite(sqlite) => diesel::insert_into(deliveries::table).values(rows).execute(sqlite)?,
            DbConnection::Postgres(pg) => diesel::insert_into(deliveries::table).values(rows).execute(pg)?,
        };
    }
    note_queued();
    Ok(queued)
}

/// A delivery as stored.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = deliveries)]
pub struct DeliveryRow {
    pub id: i64,
    pub client_id: i64,
    pub session_sid: String,
    pub user_id: i64,
    pub created_at: NaiveDateTime,
    pub attempts: i32,
    pub next_attempt_at: NaiveDateTime,
    pub claimed_until: Option<NaiveDateTime>,
    pub delivered_at: Option<NaiveDateTime>,
    pub failed_at: Option<NaiveDateTime>,
    pub last_error: Option<String>,
}

/// A claimed delivery and what sending it needs from its app: `client_id`, address, the
/// algorithm of its ID tokens.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub delivery: DeliveryRow,
    pub client_id: String,
    pub uri: String,
    pub id_token_alg: String,
}

fn due(now: NaiveDateTime) -> deliveries::BoxedQuery<'static, super::MultiBackend, diesel::sql_types::BigInt> {
    deliveries::table
        .filter(deliveries::delivered_at.is_null())
        .filter(deliveries::failed_at.is_null())
        .filter(deliveries::next_attempt_at.le(now))
        .filter(deliveries::claimed_until.is_null().or(deliveries::claimed_until.lt(now)))
        .select(deliveries::id)
        .into_boxed()
}

/// Whether any delivery is due (a read: an idle deliverer takes no write lock).
pub fn any_due(conn: &mut DbConnection, now: NaiveDateTime) -> QueryResult<bool> {
    Ok(!due(now).limit(1).load::<i64>(conn)?.is_empty())
}

/// Takes up to `limit` due deliveries nobody is making, until `lease_until`, counting the
/// attempt.
pub fn claim_due(
    conn: &mut DbConnection,
    now: NaiveDateTime,
    lease_until: NaiveDateTime,
    limit: i64,
) -> QueryResult<Vec<Claimed>> {
    write_transaction(conn, |conn| {
        let oldest_first = deliveries::table
            .filter(deliveries::delivered_at.is_null())
            .filter(deliveries::failed_at.is_null())
            .filter(deliveries::next_attempt_at.le(now))
            .filter(deliveries::claimed_until.is_null().or(deliveries::claimed_until.lt(now)))
            .order((deliveries::next_attempt_at, deliveries::id))
            .limit(limit)
            .select(deliveries::id);
        let ids: Vec<i64> = match conn {
            // Another instance's claims in flight are skipped, not waited for.
            DbConnection::Postgres(pg) => oldest_first.for_update().skip_locked().load(pg)?,
            DbConnection::Sqlite(sqlite) => oldest_first.load(sqlite)?,
        };
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        diesel::update(deliveries::table.filter(deliveries::id.eq_any(&ids)))
            .set((deliveries::claimed_until.eq(lease_until), deliveries::attempts.eq(deliveries::attempts + 1)))
            .execute(conn)?;
        let rows: Vec<(DeliveryRow, String, String, String)> = deliveries::table
            .inner_join(oauth_clients::table)
            .filter(deliveries::id.eq_any(&ids))
            .select((
                DeliveryRow::as_select(),
                oauth_clients::client_id,
                oauth_clients::backchannel_logout_uri,
                oauth_clients::id_token_alg,
            ))
            .load(conn)?;
        Ok(rows
            .into_iter()
            .map(|(delivery, client_id, uri, id_token_alg)| Claimed { delivery, client_id, uri, id_token_alg })
            .collect())
    })
}

/// The app acknowledged the logout token.
pub fn mark_delivered(conn: &mut DbConnection, id: i64, now: NaiveDateTime) -> QueryResult<()> {
    diesel::update(deliveries::table.find(id))
        .set((
            deliveries::delivered_at.eq(now),
            deliveries::claimed_until.eq(None::<NaiveDateTime>),
            deliveries::last_error.eq(None::<String>),
        ))
        .execute(conn)?;
    Ok(())
}

/// Not delivered this time: try again at `next_attempt_at`.
pub fn mark_retry(conn: &mut DbConnection, id: i64, error: &str, next_attempt_at: NaiveDateTime) -> QueryResult<()> {
    diesel::update(deliveries::table.find(id))
        .set((
            deliveries::next_attempt_at.eq(next_attempt_at),
            deliveries::claimed_until.eq(None::<NaiveDateTime>),
            deliveries::last_error.eq(error),
        ))
        .execute(conn)?;
    Ok(())
}

/// Given up on, with why.
pub fn mark_failed(conn: &mut DbConnection, id: i64, error: &str, now: NaiveDateTime) -> QueryResult<()> {
    diesel::update(deliveries::table.find(id))
        .set((
            deliveries::failed_at.eq(now),
            deliveries::claimed_until.eq(None::<NaiveDateTime>),
            deliveries::last_error.eq(error),
        ))
        .execute(conn)?;
    Ok(())
}

/// Lets go of every claim: on a single SQLite instance at start, the claims a killed process
/// left (nobody else can be delivering).
pub fn release_claims(conn: &mut DbConnection) -> QueryResult<usize> {
    diesel::update(
        deliveries::table
            .filter(deliveries::claimed_until.is_not_null())
            .filter(deliveries::delivered_at.is_null())
            .filter(deliveries::failed_at.is_null()),
    )
    .set(deliveries::claimed_until.eq(None::<NaiveDateTime>))
    .execute(conn)
}

/// An app's newest deliveries, for its admin page.
pub fn recent_for_client(conn: &mut DbConnection, client_id: i64, limit: i64) -> QueryResult<Vec<DeliveryRow>> {
    deliveries::table
        .filter(deliveries::client_id.eq(client_id))
        .order(deliveries::id.desc())
        .limit(limit)
        .select(DeliveryRow::as_select())
        .load(conn)
}

/// An app's deliveries by state: (waiting, of those failed at least once, delivered, given up).
pub fn counts_for_client(conn: &mut DbConnection, client_id: i64) -> QueryResult<(i64, i64, i64, i64)> {
    let of_client = || deliveries::table.filter(deliveries::client_id.eq(client_id));
    let waiting = || of_client().filter(deliveries::delivered_at.is_null()).filter(deliveries::failed_at.is_null());
    Ok((
        waiting().count().get_result(conn)?,
        waiting()
            .filter(deliveries::attempts.gt(0))
            .filter(deliveries::last_error.is_not_null())
            .count()
            .get_result(conn)?,
        of_client().filter(deliveries::delivered_at.is_not_null()).count().get_result(conn)?,
        of_client().filter(deliveries::failed_at.is_not_null()).count().get_result(conn)?,
    ))
}

/// Deletes deliveries made or given up on before `before` (the queue is not an archive).
pub fn prune(conn: &mut DbConnection, before: NaiveDateTime) -> QueryResult<usize> {
    diesel::delete(
        deliveries::table
            .filter(deliveries::created_at.lt(before))
            .filter(deliveries::delivered_at.is_not_null().or(deliveries::failed_at.is_not_null())),
    )
    .execute(conn)
}
