//! Queries on `oauth_device_codes` (RFC 8628): a device's code, the user code a person types at
//! `/device`, and what they decided.
use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConnection;
use super::schema::oauth_device_codes as codes;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = codes)]
pub struct DeviceCodeRow {
    pub device_hash: String,
    pub user_code: String,
    pub client_id: i64,
    pub scope: String,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub poll_interval: i32,
    pub last_polled_at: Option<NaiveDateTime>,
    pub state: String,
    pub user_id: Option<i64>,
    pub session_sid: Option<String>,
    pub auth_time: Option<NaiveDateTime>,
    pub amr: Option<String>,
}

/// A new code of an app (`(device_hash, user_code, client_id, scope)`), unless the app has `cap`
/// codes waiting already: `Ok(false)`. A user code already taken is a unique violation (the
/// caller draws another).
pub fn insert(
    conn: &mut DbConnection,
    (device_hash, user_code, client_id, scope): (&str, &str, i64, &str),
    (at, expires_at, interval): (NaiveDateTime, NaiveDateTime, i32),
    cap: i64,
) -> QueryResult<bool> {
    super::write_transaction(conn, |conn| {
        let waiting: i64 = codes::table
            .filter(codes::client_id.eq(client_id))
            .filter(codes::expires_at.gt(at))
            .filter(codes::state.eq("pending"))
            .count()
            .get_result(conn)?;
        if waiting >= cap {
            return Ok(false);
        }
        diesel::insert_into(codes::table)
            .values((
                codes::device_hash.eq(device_hash),
                codes::user_code.eq(user_code),
                codes::client_id.eq(client_id),
                codes::scope.eq(scope),
                codes::created_at.eq(at),
                codes::expires_at.eq(expires_at),
                codes::poll_interval.eq(interval),
                codes::state.eq("pending"),
            ))
            .execute(conn)?;
        Ok(true)
    })
}

pub fn find_by_user_code(conn: &mut DbConnection, user_code: &str) -> QueryResult<Option<DeviceCodeRow>> {
    codes::table.filter(codes::user_code.eq(user_code)).select(DeviceCodeRow::as_select()).first(conn).optional()
}

pub fn find(conn: &mut DbConnection, device_hash: &str) -> QueryResult<Option<DeviceCodeRow>> {
    codes::table.find(device_hash).select(DeviceCodeRow::as_select()).first(conn).optional()
}

/// Who decided, from which session, with what proof.
pub struct Decision<'a> {
    pub allowed: bool,
    pub user_id: i64,
    pub session_sid: &'a str,
    pub auth_time: NaiveDateTime,
    pub amr: &'a str,
}

/// Records the decision on a code that is still waiting; false when it was decided already or
/// has expired (compare-and-set).
pub fn decide(
    conn: &mut DbConnection,
    user_code: &str,
    decision: &Decision<'_>,
    at: NaiveDateTime,
) -> QueryResult<bool> {
    Ok(diesel::update(
        codes::table
            .filter(codes::user_code.eq(user_code))
            .filter(codes::state.eq("pending"))
            .filter(codes::expires_at.gt(at)),
    )
    .set((
        codes::state.eq(if decision.allowed { "allowed" } else { "denied" }),
        codes::user_id.eq(decision.user_id),
        codes::session_sid.eq(decision.session_sid),
        codes::auth_time.eq(decision.auth_time),
        codes::amr.eq(decision.amr),
    ))
    .execute(conn)?
        == 1)
}

/// The device polled at `at`; `interval` is how often it may from now on.
pub fn polled(conn: &mut DbConnection, device_hash: &str, at: NaiveDateTime, interval: i32) -> QueryResult<()> {
    diesel::update(codes::table.find(device_hash))
        .set((codes::last_polled_at.eq(at), codes::poll_interval.eq(interval)))
        .execute(conn)?;
    Ok(())
}

/// The allowed code becomes tokens once; false when it did already (compare-and-set).
pub fn use_allowed(conn: &mut DbConnection, device_hash: &str) -> QueryResult<bool> {
    Ok(diesel::update(codes::table.find(device_hash).filter(codes::state.eq("allowed")))
        .set(codes::state.eq("used"))
        .execute(conn)?
        == 1)
}

/// Deletes codes that expired before `before` (a device polling after expiry hears
/// `expired_token` until then).
pub fn prune(conn: &mut DbConnection, before: NaiveDateTime) -> QueryResult<usize> {
    diesel::delete(codes::table.filter(codes::expires_at.lt(before))).execute(conn)
}
