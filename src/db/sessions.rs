//! Queries on login sessions, their refresh tokens, and the list of revoked sessions.
use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConnection;
use super::schema::{refresh_tokens, revoked_sessions, sessions};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = sessions)]
pub struct Session {
    /// The public handle, used in URLs.
    pub id: i64,
    /// The `sid` claim of this session's access tokens.
    pub sid: String,
    pub user_id: i64,
    pub created_at: NaiveDateTime,
    pub last_used_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub client_ip: String,
    pub user_agent: String,
    /// `form` or `api`.
    pub via: String,
    /// How the user proved who they are: RFC 8176 `amr` values, space-separated.
    pub amr: String,
    /// When they last proved it (sign-in, or "Confirm it's you"); `None` for sessions from
    /// before it was recorded, which count from their start.
    pub proved_at: Option<NaiveDateTime>,
}

impl Session {
    /// When the person last proved who they are in this session.
    pub fn proved_at(&self) -> NaiveDateTime {
        self.proved_at.unwrap_or(self.created_at)
    }
}

#[derive(Insertable)]
#[diesel(table_name = sessions)]
pub struct NewSession<'a> {
    pub sid: &'a str,
    pub user_id: i64,
    pub created_at: NaiveDateTime,
    pub last_used_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub client_ip: &'a str,
    pub user_agent: &'a str,
    pub via: &'a str,
    pub amr: &'a str,
    pub proved_at: NaiveDateTime,
}

/// Inserts the session and its first refresh token.
/// Whether any session was ever started here (and not yet pruned).
pub fn any(conn: &mut DbConnection) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(sessions::table.select(sessions::id))).get_result(conn)
}

pub fn insert(conn: &mut DbConnection, new: &NewSession<'_>, refresh_hash: &str) -> QueryResult<Session> {
    let session: Session =
        diesel::insert_into(sessions::table).values(new).returning(sessions::all_columns).get_result(conn)?;
    add_refresh_token(conn, session.id, refresh_hash, new.created_at)?;
    Ok(session)
}

pub fn add_refresh_token(conn: &mut DbConnection, session_id: i64, hash: &str, at: NaiveDateTime) -> QueryResult<()> {
    diesel::insert_into(refresh_tokens::table)
        .values((
            refresh_tokens::token_hash.eq(hash),
            refresh_tokens::session_id.eq(session_id),
            refresh_tokens::issued_at.eq(at),
        ))
        .execute(conn)?;
    Ok(())
}

/// The session a refresh token belongs to, and when the token was retired (`None`: current).
pub fn find_by_refresh_hash(
    conn: &mut DbConnection,
    hash: &str,
) -> QueryResult<Option<(Session, Option<NaiveDateTime>)>> {
    refresh_tokens::table
        .inner_join(sessions::table)
        .filter(refresh_tokens::token_hash.eq(hash))
        .select((Session::as_select(), refresh_tokens::retired_at))
        .first(conn)
        .optional()
}

/// Retires a refresh token if it is still current: `false` means another request retired it
/// first (a compare-and-set, so two instances cannot both rotate the same token).
pub fn retire_refresh_token(conn: &mut DbConnection, hash: &str, at: NaiveDateTime) -> QueryResult<bool> {
    let updated = diesel::update(
        refresh_tokens::table.filter(refresh_tokens::token_hash.eq(hash)).filter(refresh_tokens::retired_at.is_null()),
    )
    .set(refresh_tokens::retired_at.eq(at))
    .execute(conn)?;
    Ok(updated == 1)
}

pub fn set_amr(conn: &mut DbConnection, sid: &str, amr: &str) -> QueryResult<()> {
    diesel::update(sessions::table.filter(sessions::sid.eq(sid))).set(sessions::amr.eq(amr)).execute(conn)?;
    Ok(())
}

/// The person proved who they are again in session `sid`, at `at`.
pub fn set_proved_at(conn: &mut DbConnection, sid: &str, at: NaiveDateTime) -> QueryResult<bool> {
    Ok(diesel::update(sessions::table.filter(sessions::sid.eq(sid))).set(sessions::proved_at.eq(at)).execute(conn)?
        == 1)
}

pub fn touch(conn: &mut DbConnection, session_id: i64, at: NaiveDateTime) -> QueryResult<()> {
    diesel::update(sessions::table.find(session_id)).set(sessions::last_used_at.eq(at)).execute(conn)?;
    Ok(())
}

pub fn find_by_sid(conn: &mut DbConnection, sid: &str) -> QueryResult<Option<Session>> {
    sessions::table.filter(sessions::sid.eq(sid)).select(Session::as_select()).first(conn).optional()
}

/// A user's sessions that have not timed out, newest first.
pub fn live_for_user(
    conn: &mut DbConnection,
    user_id: i64,
    now: NaiveDateTime,
    idle_cutoff: NaiveDateTime,
) -> QueryResult<Vec<Session>> {
    sessions::table
        .filter(sessions::user_id.eq(user_id))
        .filter(sessions::expires_at.gt(now))
        .filter(sessions::last_used_at.gt(idle_cutoff))
        .order(sessions::id.desc())
        .select(Session::as_select())
        .load(conn)
}

/// The ids of a user's sessions beyond the `keep` most recently used (oldest first).
pub fn beyond_newest(conn: &mut DbConnection, user_id: i64, keep: i64) -> QueryResult<Vec<i64>> {
    sessions::table
        .filter(sessions::user_id.eq(user_id))
        .order((sessions::last_used_at.desc(), sessions::id.desc()))
        .offset(keep)
        .select(sessions::id)
        .load(conn)
}

/// How many sessions are open (not ended, not timed out), all users.
pub fn count_open(conn: &mut DbConnection, now: NaiveDateTime, idle_cutoff: NaiveDateTime) -> QueryResult<i64> {
    sessions::table
        .filter(sessions::expires_at.gt(now))
        .filter(sessions::last_used_at.gt(idle_cutoff))
        .count()
        .get_result(conn)
}

/// Which sessions to end.
#[derive(Debug, Clone)]
pub enum Ending {
    /// One session of one user (the user id keeps a handle from reaching someone else's).
    One {
        user_id: i64,
        id: i64,
    },
    BySid(String),
    /// Every session of a user, optionally sparing one (the caller's own).
    AllOfUser {
        user_id: i64,
        except_sid: Option<String>,
    },
}

/// Ends sessions: their ids go on the revoked list (so every instance refuses their access
/// tokens), then the rows go, and their refresh tokens with them. Returns what was ended.
pub fn revoke(conn: &mut DbConnection, which: &Ending, at: NaiveDateTime) -> QueryResult<Vec<Session>> {
    let ended: Vec<Session> = match which {
        Ending::One { user_id, id } => sessions::table
            .filter(sessions::id.eq(*id))
            .filter(sessions::user_id.eq(*user_id))
            .select(Session::as_select())
            .load(conn)?,
        Ending::BySid(sid) => sessions::table.filter(sessions::sid.eq(sid)).select(Session::as_select()).load(conn)?,
        Ending::AllOfUser { user_id, except_sid } => sessions::table
            .filter(sessions::user_id.eq(*user_id))
            .filter(sessions::sid.ne(except_sid.as_deref().unwrap_or("")))
            .select(Session::as_select())
            .load(conn)?,
    };
    if ended.is_empty() {
        return Ok(ended);
    }
    // One row at a time: multi-row INSERT is not in MultiConnection's common subset, and a
    // user has a handful of sessions.
    for session in &ended {
        diesel::insert_into(revoked_sessions::table)
            .values((revoked_sessions::sid.eq(&session.sid), revoked_sessions::revoked_at.eq(at)))
            .execute(conn)?;
    }
    let ids: Vec<i64> = ended.iter().map(|session| session.id).collect();
    diesel::delete(sessions::table.filter(sessions::id.eq_any(&ids))).execute(conn)?;
    // The apps this session signed in to lose their tokens with it, and are told.
    let of_users: Vec<(String, i64)> = ended.iter().map(|session| (session.sid.clone(), session.user_id)).collect();
    super::oauth::sessions_ended(conn, &of_users, at)?;
    Ok(ended)
}

/// Puts one id on the revoked list (an app's token that no session or grant row stands for).
pub fn revoke_id(conn: &mut DbConnection, id: &str, at: NaiveDateTime) -> QueryResult<()> {
    if revoked_sessions::table.find(id).count().get_result::<i64>(conn)? == 0 {
        diesel::insert_into(revoked_sessions::table)
            .values((revoked_sessions::sid.eq(id), revoked_sessions::revoked_at.eq(at)))
            .execute(conn)?;
    }
    Ok(())
}

/// Inside an account change's transaction: ends every session of the user but `except_sid`.
/// Returns a phrase for the audit details ("2 sessions ended"), empty when none were open.
pub fn end_all_of_user(conn: &mut DbConnection, user_id: i64, except_sid: Option<String>) -> QueryResult<String> {
    let ended = revoke(conn, &Ending::AllOfUser { user_id, except_sid }, super::users::now())?;
    Ok(match ended.len() {
        0 => String::new(),
        1 => "1 session ended".to_owned(),
        n => format!("{n} sessions ended"),
    })
}

/// Session ids revoked after `cutoff`, with when.
pub fn revoked_since(conn: &mut DbConnection, cutoff: NaiveDateTime) -> QueryResult<Vec<(String, NaiveDateTime)>> {
    revoked_sessions::table
        .filter(revoked_sessions::revoked_at.gt(cutoff))
        .select((revoked_sessions::sid, revoked_sessions::revoked_at))
        .load(conn)
}

/// Deletes sessions past their lifetime or idle timeout (their access tokens have expired
/// too), in batches, the apps they signed in to told as for any other end, and revoked ids
/// older than `revoked_cutoff`. Returns how many rows went.
pub fn prune(
    conn: &mut DbConnection,
    now: NaiveDateTime,
    idle_cutoff: NaiveDateTime,
    revoked_cutoff: NaiveDateTime,
) -> QueryResult<usize> {
    const BATCH: i64 = 500;
    let mut sessions_gone = 0;
    loop {
        let ended: Vec<(i64, String, i64)> = sessions::table
            .filter(sessions::expires_at.le(now).or(sessions::last_used_at.le(idle_cutoff)))
            .select((sessions::id, sessions::sid, sessions::user_id))
            .limit(BATCH)
            .load(conn)?;
        let ids: Vec<i64> = ended.iter().map(|(id, _, _)| *id).collect();
        if ids.is_empty() {
            break;
        }
        let of_users: Vec<(String, i64)> = ended.into_iter().map(|(_, sid, user_id)| (sid, user_id)).collect();
        sessions_gone += super::write_transaction(conn, |conn| {
            super::oauth::sessions_ended(conn, &of_users, now)?;
            diesel::delete(sessions::table.filter(sessions::id.eq_any(&ids))).execute(conn)
        })?;
        if ids.len() < BATCH as usize {
            break;
        }
    }
    let revoked_gone = diesel::delete(revoked_sessions::table.filter(revoked_sessions::revoked_at.le(revoked_cutoff)))
        .execute(conn)?;
    Ok(sessions_gone + revoked_gone)
}
