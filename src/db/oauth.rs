//! Queries on the OpenID Connect tables: the apps (`oauth_clients`), their authorizations
//! (`oauth_grants`), codes, refresh tokens and the users' consents.
use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConnection;
use super::schema::{
    oauth_clients, oauth_codes, oauth_consents, oauth_grants, oauth_pushed_requests, oauth_refresh_tokens,
    renewed_sessions, revoked_sessions,
};
use crate::domain::Role;

/// The `sid` apps see (in ID, access and logout tokens): a hash of the Portcullis session's id,
/// the same for every app of the session (for sign-outs that reach them) and useless for
/// anything else. On the revoked list too when the session ends, so every app's access token
/// of the session is refused by one entry.
pub fn app_session_id(session_sid: &str) -> String {
    use aws_lc_rs::digest;
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(
        &digest::digest(&digest::SHA256, format!("portcullis oidc sid v1:{session_sid}").as_bytes()).as_ref()[..18],
    )
}

/// An app as stored. Lists are text (see the migration): `redirect_uris` one per line, the
/// others separated by spaces.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = oauth_clients)]
pub struct ClientRow {
    pub id: i64,
    pub client_id: String,
    pub name: String,
    pub secret_hash: Option<String>,
    pub redirect_uris: String,
    pub scopes: String,
    pub ask_consent: bool,
    pub allowed_roles: String,
    pub allowed_groups: String,
    pub id_token_alg: String,
    pub access_token_seconds: i64,
    pub refresh_token_seconds: i64,
    pub is_enabled: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub post_logout_redirect_uris: String,
    pub backchannel_logout_uri: String,
    pub require_pushed_requests: bool,
    pub registration: String,
}

#[derive(Insertable, AsChangeset)]
#[diesel(table_name = oauth_clients)]
pub struct ClientChanges<'a> {
    pub name: &'a str,
    pub redirect_uris: &'a str,
    pub scopes: &'a str,
    pub ask_consent: bool,
    pub allowed_roles: &'a str,
    pub allowed_groups: &'a str,
    pub id_token_alg: &'a str,
    pub access_token_seconds: i64,
    pub refresh_token_seconds: i64,
    pub updated_at: NaiveDateTime,
    pub post_logout_redirect_uris: &'a str,
    pub backchannel_logout_uri: &'a str,
    pub require_pushed_requests: bool,
}

pub fn insert_client(
    conn: &mut DbConnection,
    client_id: &str,
    secret_hash: Option<&str>,
    settings: &ClientChanges<'_>,
    (registration, at): (&str, NaiveDateTime),
) -> QueryResult<ClientRow> {
    diesel::insert_into(oauth_clients::table)
        .values((
            oauth_clients::client_id.eq(client_id),
            oauth_clients::secret_hash.eq(secret_hash),
            settings,
            // An app that registered itself without a token waits, disabled, for an admin.
            oauth_clients::is_enabled.eq(registration != "waiting"),
            oauth_clients::registration.eq(registration),
            oauth_clients::created_at.eq(at),
        ))
        .returning(oauth_clients::all_columns)
        .get_result(conn)
}

pub fn update_client(conn: &mut DbConnection, id: i64, settings: &ClientChanges<'_>) -> QueryResult<bool> {
    Ok(diesel::update(oauth_clients::table.find(id)).set(settings).execute(conn)? == 1)
}

pub fn set_client_enabled(conn: &mut DbConnection, id: i64, enabled: bool, at: NaiveDateTime) -> QueryResult<bool> {
    Ok(diesel::update(oauth_clients::table.find(id))
        .set((oauth_clients::is_enabled.eq(enabled), oauth_clients::updated_at.eq(at)))
        .execute(conn)?
        == 1)
}

pub fn set_client_secret(conn: &mut DbConnection, id: i64, secret_hash: &str, at: NaiveDateTime) -> QueryResult<bool> {
    Ok(diesel::update(oauth_clients::table.find(id))
        .set((oauth_clients::secret_hash.eq(secret_hash), oauth_clients::updated_at.eq(at)))
        .execute(conn)?
        == 1)
}

pub fn delete_client(conn: &mut DbConnection, id: i64) -> QueryResult<bool> {
    Ok(diesel::delete(oauth_clients::table.find(id)).execute(conn)? == 1)
}

pub fn find_client(conn: &mut DbConnection, id: i64) -> QueryResult<Option<ClientRow>> {
    oauth_clients::table.find(id).select(ClientRow::as_select()).first(conn).optional()
}

pub fn find_client_by_client_id(conn: &mut DbConnection, client_id: &str) -> QueryResult<Option<ClientRow>> {
    oauth_clients::table
        .filter(oauth_clients::client_id.eq(client_id))
        .select(ClientRow::as_select())
        .first(conn)
        .optional()
}

/// Every app, by name.
pub fn list_clients(conn: &mut DbConnection) -> QueryResult<Vec<ClientRow>> {
    oauth_clients::table.order((oauth_clients::name, oauth_clients::id)).select(ClientRow::as_select()).load(conn)
}

pub fn count_clients(conn: &mut DbConnection) -> QueryResult<i64> {
    oauth_clients::table.count().get_result(conn)
}

/// A code as stored (its hash is the key).
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = oauth_codes)]
pub struct CodeRow {
    pub code_hash: String,
    pub client_id: i64,
    pub user_id: i64,
    pub session_sid: String,
    pub redirect_uri: String,
    pub scope: String,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub auth_time: NaiveDateTime,
    pub amr: String,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub used_at: Option<NaiveDateTime>,
    pub grant_id: Option<i64>,
    pub resource: Option<String>,
}

pub fn insert_code(conn: &mut DbConnection, code: &CodeRow) -> QueryResult<()> {
    diesel::insert_into(oauth_codes::table).values(code).execute(conn)?;
    Ok(())
}

pub fn find_code(conn: &mut DbConnection, code_hash: &str) -> QueryResult<Option<CodeRow>> {
    oauth_codes::table.find(code_hash).select(CodeRow::as_select()).first(conn).optional()
}

/// Marks an unused code used by `grant_id`; false when it was used already (compare-and-set:
/// two exchanges of one code at once cannot both win).
pub fn use_code(conn: &mut DbConnection, code_hash: &str, grant_id: i64, at: NaiveDateTime) -> QueryResult<bool> {
    Ok(diesel::update(oauth_codes::table.find(code_hash).filter(oauth_codes::used_at.is_null()))
        .set((oauth_codes::used_at.eq(at), oauth_codes::grant_id.eq(grant_id)))
        .execute(conn)?
        == 1)
}

/// A grant (one authorization and the tokens it led to).
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = oauth_grants)]
pub struct GrantRow {
    pub id: i64,
    pub gid: String,
    pub client_id: i64,
    pub user_id: Option<i64>,
    pub session_sid: Option<String>,
    pub scope: String,
    pub auth_time: NaiveDateTime,
    pub amr: String,
    pub nonce: Option<String>,
    pub created_at: NaiveDateTime,
    pub last_used_at: NaiveDateTime,
    pub revoked_at: Option<NaiveDateTime>,
    pub resource: Option<String>,
}

#[derive(Insertable)]
#[diesel(table_name = oauth_grants)]
pub struct NewGrant<'a> {
    pub gid: &'a str,
    pub client_id: i64,
    pub user_id: Option<i64>,
    pub session_sid: Option<&'a str>,
    pub scope: &'a str,
    pub auth_time: NaiveDateTime,
    pub amr: &'a str,
    pub nonce: Option<&'a str>,
    pub created_at: NaiveDateTime,
    pub last_used_at: NaiveDateTime,
    pub resource: Option<&'a str>,
}

pub fn insert_grant(conn: &mut DbConnection, grant: &NewGrant<'_>) -> QueryResult<GrantRow> {
    diesel::insert_into(oauth_grants::table).values(grant).returning(oauth_grants::all_columns).get_result(conn)
}

pub fn find_grant(conn: &mut DbConnection, id: i64) -> QueryResult<Option<GrantRow>> {
    oauth_grants::table.find(id).select(GrantRow::as_select()).first(conn).optional()
}

pub fn find_grant_by_gid(conn: &mut DbConnection, gid: &str) -> QueryResult<Option<GrantRow>> {
    oauth_grants::table.filter(oauth_grants::gid.eq(gid)).select(GrantRow::as_select()).first(conn).optional()
}

pub fn touch_grant(conn: &mut DbConnection, id: i64, at: NaiveDateTime) -> QueryResult<()> {
    diesel::update(oauth_grants::table.find(id)).set(oauth_grants::last_used_at.eq(at)).execute(conn)?;
    Ok(())
}

/// Why grants end, which decides what else happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Why {
    /// The user disconnected the app, or may no longer use it: the grant's `gid` goes on the
    /// revoked list, and the app hears of it (OpenID Connect Back-Channel Logout), its session
    /// there ending too.
    Disconnected,
    /// Replaced by a newer sign-in of the same session, or ended for a reused code or refresh
    /// token: the `gid` goes on the revoked list; the app's session, which the newer grant
    /// shares, stays (nobody is told).
    Replaced,
    /// The Portcullis session ended: its app `sid` is on the revoked list already (it covers
    /// every app's tokens of the session) and the apps are told by the caller.
    SessionEnded,
}
/// A live grant: id, `gid`, app, user, session.
type LiveGrant = (i64, String, i64, Option<i64>, Option<String>);

/// Rows per statement (SQLite allows 32,766 bound values).
const BATCH: usize = 500;

/// Ends grants: their refresh tokens are retired at once, and (but for a session's end, see
/// [`Why`]) their `gid`s go on the revoked list, which every instance reads each second, and
/// disconnected apps are told. Returns how many ended.
fn revoke_grants(conn: &mut DbConnection, grants: Vec<LiveGrant>, at: NaiveDateTime, why: Why) -> QueryResult<usize> {
    for chunk in grants.chunks(BATCH) {
        let ids: Vec<i64> = chunk.iter().map(|grant| grant.0).collect();
        if why != Why::SessionEnded {
            let revoked: Vec<_> = chunk
                .iter()
                .map(|grant| (revoked_sessions::sid.eq(grant.1.as_str()), revoked_sessions::revoked_at.eq(at)))
                .collect();
            match conn {
                DbConnection::Sqlite(sqlite) => {
                    diesel::insert_into(revoked_sessions::table).values(&revoked).execute(sqlite)?
                }
                DbConnection::Postgres(pg) => {
                    diesel::insert_into(revoked_sessions::table).values(&revoked).execute(pg)?
                }
            };
        }
        diesel::update(oauth_grants::table.filter(oauth_grants::id.eq_any(&ids)))
            .set(oauth_grants::revoked_at.eq(at))
            .execute(conn)?;
        diesel::update(
            oauth_refresh_tokens::table
                .filter(oauth_refresh_tokens::grant_id.eq_any(&ids))
                .filter(oauth_refresh_tokens::retired_at.is_null()),
        )
        .set(oauth_refresh_tokens::retired_at.eq(at))
        .execute(conn)?;
    }
    if why == Why::Disconnected {
        let ended: Vec<(String, i64, i64)> =
            grants.iter().filter_map(|(_, _, client, user, sid)| Some((sid.clone()?, (*user)?, *client))).collect();
        super::logout_deliveries::queue(conn, &ended, at)?;
    }
    Ok(grants.len())
}

/// The SQL types of a [`LiveGrant`].
type LiveGrantColumns = (
    diesel::sql_types::BigInt,
    diesel::sql_types::Text,
    diesel::sql_types::BigInt,
    diesel::sql_types::Nullable<diesel::sql_types::BigInt>,
    diesel::sql_types::Nullable<diesel::sql_types::Text>,
);

fn live_grants() -> oauth_grants::BoxedQuery<'static, super::MultiBackend, LiveGrantColumns> {
    oauth_grants::table
        .filter(oauth_grants::revoked_at.is_null())
        .select((
            oauth_grants::id,
            oauth_grants::gid,
            oauth_grants::client_id,
            oauth_grants::user_id,
            oauth_grants::session_sid,
        ))
        .into_boxed()
}

/// Ends one grant; the app is not told (see [`Why::Replaced`]).
pub fn revoke_grant(conn: &mut DbConnection, id: i64, at: NaiveDateTime) -> QueryResult<usize> {
    let grants = live_grants().filter(oauth_grants::id.eq(id)).load(conn)?;
    revoke_grants(conn, grants, at, Why::Replaced)
}

/// In the transaction that ends sessions (`(sid, user id)`): for those that apps signed in
/// through, the apps' access tokens are refused from now on (one entry on the revoked list per
/// session: the `sid` those tokens carry) and one row asks a deliverer to end the grants and
/// tell each app ([`end_grants_of_ended_sessions`]). A sign-out costs the same with 100 apps as
/// with one.
pub fn sessions_ended(conn: &mut DbConnection, ended: &[(String, i64)], at: NaiveDateTime) -> QueryResult<usize> {
    use super::schema::oauth_ended_sessions as ended_sessions;
    let mut marked = 0;
    for chunk in ended.chunks(BATCH) {
        let sids: Vec<&str> = chunk.iter().map(|(sid, _)| sid.as_str()).collect();
        let with_apps: Vec<(Option<String>, i64)> = oauth_grants::table
            .filter(oauth_grants::session_sid.eq_any(&sids))
            .filter(oauth_grants::revoked_at.is_null())
            .select((oauth_grants::session_sid, oauth_grants::client_id))
            .distinct()
            .load(conn)?;
        let rows: Vec<(&str, i64, String)> = chunk
            .iter()
            .filter_map(|(sid, user_id)| {
                let apps: Vec<String> = with_apps
                    .iter()
                    .filter(|(with, _)| with.as_deref() == Some(sid.as_str()))
                    .map(|(_, client)| client.to_string())
                    .collect();
                (!apps.is_empty()).then(|| (sid.as_str(), *user_id, apps.join(" ")))
            })
            .collect();
        if rows.is_empty() {
            continue;
        }
        let app_sids: Vec<String> = rows.iter().map(|(sid, _, _)| app_session_id(sid)).collect();
        let revoked: Vec<_> = app_sids
            .iter()
            .map(|sid| (revoked_sessions::sid.eq(sid.as_str()), revoked_sessions::revoked_at.eq(at)))
            .collect();
        let queued: Vec<_> = rows
            .iter()
            .map(|(sid, user_id, clients)| {
                (
                    ended_sessions::session_sid.eq(*sid),
                    ended_sessions::user_id.eq(*user_id),
                    ended_sessions::client_ids.eq(clients.as_str()),
                    ended_sessions::ended_at.eq(at),
                )
            })
            .collect();
        // An id already on the list (a session ended twice at once) stays as it is.
        match conn {
            DbConnection::Sqlite(sqlite) => {
                diesel::insert_or_ignore_into(revoked_sessions::table).values(&revoked).execute(sqlite)?;
                diesel::insert_or_ignore_into(ended_sessions::table).values(&queued).execute(sqlite)?;
            }
            DbConnection::Postgres(pg) => {
                diesel::insert_into(revoked_sessions::table).values(&revoked).on_conflict_do_nothing().execute(pg)?;
                diesel::insert_into(ended_sessions::table).values(&queued).on_conflict_do_nothing().execute(pg)?;
            }
        }
        marked += rows.len();
    }
    if marked > 0 {
        super::logout_deliveries::note_queued();
    }
    Ok(marked)
}

/// Whether any ended session waits for its grants to end (a read).
pub fn any_ended_sessions(conn: &mut DbConnection) -> QueryResult<bool> {
    use super::schema::oauth_ended_sessions as ended_sessions;
    Ok(!ended_sessions::table.select(ended_sessions::session_sid).limit(1).load::<String>(conn)?.is_empty())
}

/// Takes up to `limit` ended sessions nobody else is handling and, in one transaction, ends
/// their grants and queues a logout token for each app (see [`sessions_ended`]). How many
/// sessions.
pub fn end_grants_of_ended_sessions(conn: &mut DbConnection, limit: i64, at: NaiveDateTime) -> QueryResult<usize> {
    use super::schema::oauth_ended_sessions as ended_sessions;
    super::write_transaction(conn, |conn| {
        let oldest = ended_sessions::table.order(ended_sessions::ended_at).limit(limit).select((
            ended_sessions::session_sid,
            ended_sessions::user_id,
            ended_sessions::client_ids,
        ));
        let ended: Vec<(String, i64, String)> = match conn {
            DbConnection::Postgres(pg) => oldest.for_update().skip_locked().load(pg)?,
            DbConnection::Sqlite(sqlite) => oldest.load(sqlite)?,
        };
        if ended.is_empty() {
            return Ok(0);
        }
        let sids: Vec<String> = ended.iter().map(|(sid, _, _)| sid.clone()).collect();
        // The grants still there end (a deleted user's went with the user); every app the
        // session had signed in to is told.
        let grants = live_grants().filter(oauth_grants::session_sid.eq_any(sids.clone())).load(conn)?;
        revoke_grants(conn, grants, at, Why::SessionEnded)?;
        let told: Vec<(String, i64, i64)> = ended
            .iter()
            .flat_map(|(sid, user_id, clients)| {
                clients.split_whitespace().filter_map(|client| Some((sid.clone(), *user_id, client.parse().ok()?)))
            })
            .collect();
        super::logout_deliveries::queue(conn, &told, at)?;
        diesel::delete(ended_sessions::table.filter(ended_sessions::session_sid.eq_any(&sids))).execute(conn)?;
        Ok(sids.len())
    })
}

/// Ends the live grants of a session with an app beyond its `keep` newest (so that one session
/// signing in to an app again and again cannot grow the table). How many ended.
pub fn revoke_grants_beyond(
    conn: &mut DbConnection,
    session_sid: &str,
    client_id: i64,
    keep: i64,
    at: NaiveDateTime,
) -> QueryResult<usize> {
    let grants = live_grants()
        .filter(oauth_grants::session_sid.eq(session_sid.to_owned()))
        .filter(oauth_grants::client_id.eq(client_id))
        .order(oauth_grants::id.desc())
        .limit(1000)
        .offset(keep)
        .load(conn)?;
    revoke_grants(conn, grants, at, Why::Replaced)
}

/// Every live grant of a user to an app (disconnecting it); the app hears of it.
pub fn revoke_grants_of_user_and_client(
    conn: &mut DbConnection,
    user_id: i64,
    client_id: i64,
    at: NaiveDateTime,
) -> QueryResult<usize> {
    let grants = live_grants()
        .filter(oauth_grants::user_id.eq(user_id))
        .filter(oauth_grants::client_id.eq(client_id))
        .load(conn)?;
    revoke_grants(conn, grants, at, Why::Disconnected)
}

/// After a change to who is in which group: ends (and tells) the live grants of `user_ids` to
/// apps that no longer admit them. How many ended.
pub fn revoke_grants_no_longer_admitted(
    conn: &mut DbConnection,
    user_ids: &[i64],
    at: NaiveDateTime,
) -> QueryResult<usize> {
    let mut ended = 0;
    for chunk in user_ids.chunks(BATCH) {
        let grants: Vec<(LiveGrant, String, String)> = oauth_grants::table
            .inner_join(oauth_clients::table)
            .filter(oauth_grants::revoked_at.is_null())
            .filter(oauth_grants::user_id.eq_any(chunk))
            .filter(oauth_clients::allowed_groups.ne("").or(oauth_clients::allowed_roles.ne("")))
            .select((
                (
                    oauth_grants::id,
                    oauth_grants::gid,
                    oauth_grants::client_id,
                    oauth_grants::user_id,
                    oauth_grants::session_sid,
                ),
                oauth_clients::allowed_roles,
                oauth_clients::allowed_groups,
            ))
            .load(conn)?;
        if grants.is_empty() {
            continue;
        }
        let mut refused = Vec::new();
        for (grant, roles, groups) in grants {
            let Some(user_id) = grant.3 else { continue };
            let Some(user) = super::users::find_by_id(conn, user_id)? else { continue };
            let member_of: Vec<String> =
                super::groups::names_of_users(conn, &[user_id])?.into_iter().map(|(_, name)| name).collect();
            // An app's settings that do not read admit nobody (like the flows, which refuse it).
            let roles = roles.split_whitespace().map(Role::parse).collect::<Result<Vec<_>, _>>();
            let groups: Vec<String> = groups.split_whitespace().map(str::to_owned).collect();
            if !roles.is_ok_and(|roles| crate::domain::app_admits(&roles, &groups, user.role, &member_of)) {
                refused.push(grant);
            }
        }
        ended += revoke_grants(conn, refused, at, Why::Disconnected)?;
    }
    Ok(ended)
}

/// Access tokens issued to an app before `at` are refused from now on (a disabled app): the
/// key `client:<id>` on the renewal list, read by every instance each second.
pub fn outdate_client_tokens(conn: &mut DbConnection, key: &str, at: NaiveDateTime) -> QueryResult<()> {
    diesel::delete(renewed_sessions::table.find(key)).execute(conn)?;
    diesel::insert_into(renewed_sessions::table)
        .values((renewed_sessions::sid.eq(key), renewed_sessions::changed_at.eq(at)))
        .execute(conn)?;
    Ok(())
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = oauth_refresh_tokens)]
pub struct RefreshRow {
    pub token_hash: String,
    pub grant_id: i64,
    pub issued_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub retired_at: Option<NaiveDateTime>,
}

pub fn insert_refresh_token(
    conn: &mut DbConnection,
    token_hash: &str,
    grant_id: i64,
    at: NaiveDateTime,
    expires_at: NaiveDateTime,
) -> QueryResult<()> {
    diesel::insert_into(oauth_refresh_tokens::table)
        .values((
            oauth_refresh_tokens::token_hash.eq(token_hash),
            oauth_refresh_tokens::grant_id.eq(grant_id),
            oauth_refresh_tokens::issued_at.eq(at),
            oauth_refresh_tokens::expires_at.eq(expires_at),
        ))
        .execute(conn)?;
    Ok(())
}

pub fn find_refresh_token(conn: &mut DbConnection, token_hash: &str) -> QueryResult<Option<RefreshRow>> {
    oauth_refresh_tokens::table.find(token_hash).select(RefreshRow::as_select()).first(conn).optional()
}

/// Retires a live refresh token; false when it was retired already (compare-and-set).
pub fn retire_refresh_token(conn: &mut DbConnection, token_hash: &str, at: NaiveDateTime) -> QueryResult<bool> {
    Ok(diesel::update(oauth_refresh_tokens::table.find(token_hash).filter(oauth_refresh_tokens::retired_at.is_null()))
        .set(oauth_refresh_tokens::retired_at.eq(at))
        .execute(conn)?
        == 1)
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = oauth_consents)]
pub struct ConsentRow {
    pub user_id: i64,
    pub client_id: i64,
    pub scopes: String,
    pub granted_at: NaiveDateTime,
    pub last_used_at: NaiveDateTime,
}

pub fn find_consent(conn: &mut DbConnection, user_id: i64, client_id: i64) -> QueryResult<Option<ConsentRow>> {
    oauth_consents::table.find((user_id, client_id)).select(ConsentRow::as_select()).first(conn).optional()
}

/// Records (or widens) what a user let an app learn.
pub fn save_consent(
    conn: &mut DbConnection,
    user_id: i64,
    client_id: i64,
    scopes: &str,
    at: NaiveDateTime,
) -> QueryResult<()> {
    let changed = diesel::update(oauth_consents::table.find((user_id, client_id)))
        .set((oauth_consents::scopes.eq(scopes), oauth_consents::last_used_at.eq(at)))
        .execute(conn)?;
    if changed == 0 {
        diesel::insert_into(oauth_consents::table)
            .values((
                oauth_consents::user_id.eq(user_id),
                oauth_consents::client_id.eq(client_id),
                oauth_consents::scopes.eq(scopes),
                oauth_consents::granted_at.eq(at),
                oauth_consents::last_used_at.eq(at),
            ))
            .execute(conn)?;
    }
    Ok(())
}

pub fn touch_consent(conn: &mut DbConnection, user_id: i64, client_id: i64, at: NaiveDateTime) -> QueryResult<()> {
    diesel::update(oauth_consents::table.find((user_id, client_id)))
        .set(oauth_consents::last_used_at.eq(at))
        .execute(conn)?;
    Ok(())
}

pub fn delete_consent(conn: &mut DbConnection, user_id: i64, client_id: i64) -> QueryResult<bool> {
    Ok(diesel::delete(oauth_consents::table.find((user_id, client_id))).execute(conn)? == 1)
}

/// A user's connected apps, most recently used first: (consent, app name, client id).
pub fn consents_of(conn: &mut DbConnection, user_id: i64) -> QueryResult<Vec<(ConsentRow, String, String)>> {
    oauth_consents::table
        .inner_join(oauth_clients::table)
        .filter(oauth_consents::user_id.eq(user_id))
        .order(oauth_consents::last_used_at.desc())
        .select((ConsentRow::as_select(), oauth_clients::name, oauth_clients::client_id))
        .load(conn)
}

/// Housekeeping: codes past their life, refresh tokens past theirs (or retired long ago), and
/// grants without a refresh token that ended or went unused before `retired_before` (every
/// access token they led to has expired). Returns how many rows went.
pub fn prune(conn: &mut DbConnection, now: NaiveDateTime, retired_before: NaiveDateTime) -> QueryResult<usize> {
    let codes = diesel::delete(oauth_codes::table.filter(oauth_codes::expires_at.le(retired_before))).execute(conn)?;
    let pushed =
        diesel::delete(oauth_pushed_requests::table.filter(oauth_pushed_requests::expires_at.le(now))).execute(conn)?;
    let tokens = diesel::delete(
        super::schema::oauth_registration_tokens::table
            .filter(super::schema::oauth_registration_tokens::expires_at.le(retired_before)),
    )
    .execute(conn)?;
    let refresh = diesel::delete(
        oauth_refresh_tokens::table
            .filter(oauth_refresh_tokens::expires_at.le(now).or(oauth_refresh_tokens::retired_at.le(retired_before))),
    )
    .execute(conn)?;
    let grants = diesel::delete(
        oauth_grants::table
            .filter(oauth_grants::revoked_at.le(retired_before).or(oauth_grants::last_used_at.le(retired_before)))
            .filter(diesel::dsl::not(diesel::dsl::exists(
                oauth_refresh_tokens::table.filter(oauth_refresh_tokens::grant_id.eq(oauth_grants::id)),
            ))),
    )
    .execute(conn)?;
    Ok(codes + pushed + tokens + refresh + grants)
}

/// The sessions signed in to an app now (live grants from a session), newest first, at most
/// `limit`: (grant, username, display name). One row per session.
pub fn sessions_of_client(
    conn: &mut DbConnection,
    client_id: i64,
    limit: i64,
) -> QueryResult<Vec<(GrantRow, String, String)>> {
    use super::schema::users;
    let rows: Vec<(GrantRow, String, String)> = oauth_grants::table
        .inner_join(users::table.on(oauth_grants::user_id.eq(users::id.nullable())))
        .filter(oauth_grants::client_id.eq(client_id))
        .filter(oauth_grants::revoked_at.is_null())
        .filter(oauth_grants::session_sid.is_not_null())
        .order(oauth_grants::id.desc())
        .limit(limit.saturating_mul(GRANTS_PER_SESSION_SHOWN))
        .select((GrantRow::as_select(), users::username, users::display_name))
        .load(conn)?;
    let mut seen = std::collections::HashSet::new();
    Ok(rows
        .into_iter()
        .filter(|(grant, _, _)| seen.insert(grant.session_sid.clone()))
        .take(usize::try_from(limit).unwrap_or(0))
        .collect())
}

/// How many grants of one session the list above reads per session shown (a session holds at
/// most 20 per app).
const GRANTS_PER_SESSION_SHOWN: i64 = 20;

/// How many sessions are signed in to an app now.
pub fn count_sessions_of_client(conn: &mut DbConnection, client_id: i64) -> QueryResult<i64> {
    oauth_grants::table
        .filter(oauth_grants::client_id.eq(client_id))
        .filter(oauth_grants::revoked_at.is_null())
        .filter(oauth_grants::session_sid.is_not_null())
        .select(diesel::dsl::count(oauth_grants::session_sid).aggregate_distinct())
        .get_result(conn)
}

/// The apps each of the sessions `sids` signed in to (live grants): (session sid, app name),
/// by name.
pub fn apps_of_sessions(conn: &mut DbConnection, sids: &[String]) -> QueryResult<Vec<(String, String)>> {
    let mut rows: Vec<(Option<String>, String)> = oauth_grants::table
        .inner_join(oauth_clients::table)
        .filter(oauth_grants::session_sid.eq_any(sids))
        .filter(oauth_grants::revoked_at.is_null())
        .order(oauth_clients::name)
        .select((oauth_grants::session_sid, oauth_clients::name))
        .distinct()
        .load(conn)?;
    rows.dedup();
    Ok(rows.into_iter().filter_map(|(sid, name)| Some((sid?, name))).collect())
}

/// A pushed authorization request (RFC 9126), as stored.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = oauth_pushed_requests)]
pub struct PushedRow {
    pub request_hash: String,
    pub client_id: i64,
    pub params: String,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub used_at: Option<NaiveDateTime>,
}

/// Stores a pushed request unless the app has `cap` live ones already (false: refused).
pub fn insert_pushed_request(
    conn: &mut DbConnection,
    row: (&str, i64, &str),
    at: NaiveDateTime,
    expires_at: NaiveDateTime,
    cap: i64,
) -> QueryResult<bool> {
    let (request_hash, client_id, params) = row;
    super::write_transaction(conn, |conn| {
        let live: i64 = oauth_pushed_requests::table
            .filter(oauth_pushed_requests::client_id.eq(client_id))
            .filter(oauth_pushed_requests::expires_at.gt(at))
            .count()
            .get_result(conn)?;
        if live >= cap {
            return Ok(false);
        }
        diesel::insert_into(oauth_pushed_requests::table)
            .values((
                oauth_pushed_requests::request_hash.eq(request_hash),
                oauth_pushed_requests::client_id.eq(client_id),
                oauth_pushed_requests::params.eq(params),
                oauth_pushed_requests::created_at.eq(at),
                oauth_pushed_requests::expires_at.eq(expires_at),
            ))
            .execute(conn)?;
        Ok(true)
    })
}

pub fn find_pushed_request(conn: &mut DbConnection, request_hash: &str) -> QueryResult<Option<PushedRow>> {
    oauth_pushed_requests::table.find(request_hash).select(PushedRow::as_select()).first(conn).optional()
}

/// Marks a pushed request used; false when it was used already (compare-and-set).
pub fn use_pushed_request(conn: &mut DbConnection, request_hash: &str, at: NaiveDateTime) -> QueryResult<bool> {
    Ok(diesel::update(oauth_pushed_requests::table.find(request_hash).filter(oauth_pushed_requests::used_at.is_null()))
        .set(oauth_pushed_requests::used_at.eq(at))
        .execute(conn)?
        == 1)
}

/// How many apps registered themselves, and how many of those wait for approval.
pub fn count_registered(conn: &mut DbConnection) -> QueryResult<(i64, i64)> {
    let registered = oauth_clients::table.filter(oauth_clients::registration.ne("")).count().get_result(conn)?;
    let waiting = oauth_clients::table.filter(oauth_clients::registration.eq("waiting")).count().get_result(conn)?;
    Ok((registered, waiting))
}

/// An app that waited for approval is approved (and enabled); false when it was not waiting.
pub fn approve_client(conn: &mut DbConnection, id: i64, at: NaiveDateTime) -> QueryResult<bool> {
    Ok(diesel::update(oauth_clients::table.find(id).filter(oauth_clients::registration.eq("waiting")))
        .set((
            oauth_clients::registration.eq("dynamic"),
            oauth_clients::is_enabled.eq(true),
            oauth_clients::updated_at.eq(at),
        ))
        .execute(conn)?
        == 1)
}

/// An initial access token (RFC 7591 §3), as stored.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = super::schema::oauth_registration_tokens)]
pub struct RegistrationTokenRow {
    pub token_hash: String,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub uses_left: i32,
    pub made_by: String,
}

pub fn insert_registration_token(conn: &mut DbConnection, row: &RegistrationTokenRow) -> QueryResult<()> {
    use super::schema::oauth_registration_tokens as tokens;
    diesel::insert_into(tokens::table)
        .values((
            tokens::token_hash.eq(&row.token_hash),
            tokens::created_at.eq(row.created_at),
            tokens::expires_at.eq(row.expires_at),
            tokens::uses_left.eq(row.uses_left),
            tokens::made_by.eq(&row.made_by),
        ))
        .execute(conn)?;
    Ok(())
}

/// Spends one use of a live token; false when it is unknown, expired or used up
/// (compare-and-set: two registrations cannot share its last use).
pub fn use_registration_token(conn: &mut DbConnection, token_hash: &str, at: NaiveDateTime) -> QueryResult<bool> {
    use super::schema::oauth_registration_tokens as tokens;
    Ok(diesel::update(tokens::table.find(token_hash).filter(tokens::uses_left.gt(0)).filter(tokens::expires_at.gt(at)))
        .set(tokens::uses_left.eq(tokens::uses_left - 1))
        .execute(conn)?
        == 1)
}

/// The tokens that still work, newest first.
pub fn live_registration_tokens(conn: &mut DbConnection, at: NaiveDateTime) -> QueryResult<Vec<RegistrationTokenRow>> {
    use super::schema::oauth_registration_tokens as tokens;
    tokens::table
        .filter(tokens::uses_left.gt(0))
        .filter(tokens::expires_at.gt(at))
        .order(tokens::created_at.desc())
        .limit(100)
        .select(RegistrationTokenRow::as_select())
        .load(conn)
}

/// Ends a token at once (it is used up).
pub fn revoke_registration_token(conn: &mut DbConnection, token_hash: &str) -> QueryResult<bool> {
    use super::schema::oauth_registration_tokens as tokens;
    Ok(diesel::update(tokens::table.find(token_hash)).set(tokens::uses_left.eq(0)).execute(conn)? == 1)
}
