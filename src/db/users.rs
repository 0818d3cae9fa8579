//! Queries on the `users` table: lookups by id, name or address (and its look-alike
//! skeleton), inserts that report which unique field clashed, and the changes `accounts` makes.
//! The admin list's paging and search live in `user_search.rs`.
use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

use super::DbConnection;
use super::schema::users;
use crate::domain::search::user_search_text;
use crate::domain::{DisplayName, Email, Role, TimeZone, Username};

#[derive(Debug, Clone, Queryable)]
pub struct User {
    pub id: i64,
    #[diesel(deserialize_as = String)]
    pub username: Username,
    #[diesel(deserialize_as = String)]
    pub email: Email,
    pub display_name: String,
    pub password_hash: String,
    #[diesel(deserialize_as = String)]
    pub role: Role,
    pub is_active: bool,
    pub must_change_password: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub last_login_at: Option<NaiveDateTime>,
    /// The display name lower-cased, for search.
    pub search_name: String,
    /// What the address looks like (see `domain::email::skeleton`); unique.
    pub email_skeleton: Option<String>,
    /// Has a second factor to sign in with (kept by every change to their factors).
    pub mfa_enabled: bool,
    /// Username, e-mail and display name folded (`domain::search`), for substring search.
    pub search_text: String,
    /// The zone the user reads times in.
    #[diesel(deserialize_as = String)]
    pub time_zone: TimeZone,
}

/// The stored role. A CHECK constraint keeps the column to the two roles; anything else
/// reads as the least privileged one.
impl From<String> for Username {
    fn from(stored: String) -> Self {
        Username::from_stored(stored)
    }
}

impl From<String> for Email {
    fn from(stored: String) -> Self {
        Email::from_stored(stored)
    }
}

impl From<String> for TimeZone {
    fn from(stored: String) -> Self {
        TimeZone::from_stored(&stored)
    }
}

impl From<String> for Role {
    fn from(stored: String) -> Self {
        Role::parse(&stored).unwrap_or(Role::User)
    }
}

pub struct NewUser<'a> {
    pub username: &'a Username,
    pub email: &'a Email,
    pub display_name: &'a DisplayName,
    pub password_hash: &'a str,
    pub role: Role,
    pub must_change_password: bool,
}

#[derive(Insertable)]
#[diesel(table_name = users)]
struct NewUserRow<'a> {
    username: &'a str,
    email: &'a str,
    display_name: &'a str,
    password_hash: &'a str,
    role: &'a str,
    is_active: bool,
    must_change_password: bool,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
    search_name: String,
    email_skeleton: String,
    search_text: String,
}

#[derive(Debug, thiserror::Error)]
pub enum InsertUserError {
    #[error("That username is already taken")]
    UsernameTaken,
    #[error("That email address is already in use")]
    EmailTaken,
    #[error("That email address looks the same as one already in use (it differs only in look-alike characters)")]
    EmailLookalike,
    #[error(transparent)]
    Database(#[from] DieselError),
}

/// Now, to the microsecond: what PostgreSQL keeps, so both backends store the same value
/// and pagination cursors (which carry microseconds) match rows exactly.
pub fn now() -> NaiveDateTime {
    use chrono::SubsecRound;
    chrono::Utc::now().naive_utc().trunc_subsecs(6)
}

/// Inside a write transaction: holds the user's row until commit, so changes that read then
/// write what belongs to one user (its mailed links) happen one after the other. (SQLite's
/// write lock already serialises writers.)
pub fn lock_row(conn: &mut DbConnection, id: i64) -> QueryResult<()> {
    match conn {
        DbConnection::Postgres(pg) => {
            users::table.find(id).select(users::id).for_update().first::<i64>(pg).optional()?;
            Ok(())
        }
        DbConnection::Sqlite(_) => Ok(()),
    }
}

pub fn find_by_id(conn: &mut DbConnection, id: i64) -> QueryResult<Option<User>> {
    users::table.find(id).first(conn).optional()
}

/// The users with these ids that exist, by username.
pub fn find_by_ids(conn: &mut DbConnection, ids: &[i64]) -> QueryResult<Vec<User>> {
    users::table.filter(users::id.eq_any(ids)).order(users::username).load(conn)
}

/// Finds a user by username or email. Both are stored normalised and lower-cased, so the
/// input is too.
pub fn find_by_login(conn: &mut DbConnection, login: &str) -> QueryResult<Option<User>> {
    let login = crate::domain::email::normalize(login);
    if login.contains('@') {
        users::table.filter(users::email.eq(login)).first(conn).optional()
    } else {
        users::table.filter(users::username.eq(login)).first(conn).optional()
    }
}

impl<'a> NewUserRow<'a> {
    fn from_new(new: &'a NewUser<'a>, created: NaiveDateTime) -> Self {
        Self {
            username: new.username.as_str(),
            email: new.email.as_str(),
            display_name: new.display_name.as_str(),
            password_hash: new.password_hash,
            role: new.role.as_str(),
            is_active: true,
            must_change_password: new.must_change_password,
            created_at: created,
            updated_at: created,
            search_name: new.display_name.as_str().to_lowercase(),
            email_skeleton: new.email.skeleton(),
            search_text: user_search_text(new.username, new.email, new.display_name.as_str()),
        }
    }
}

pub fn insert(conn: &mut DbConnection, new: &NewUser<'_>) -> Result<User, InsertUserError> {
    let row = NewUserRow::from_new(new, now());
    // Checked first for a precise message; the unique indexes still decide under races.
    ensure_unique(conn, None, row.username, Some(new.email))?;
    diesel::insert_into(users::table)
        .values(&row)
        .returning(users::all_columns)
        .get_result(conn)
        .map_err(unique_violation)
}

/// Inserts many validated users at once (the CSV import); the unique indexes still guard.
pub fn insert_many(conn: &mut DbConnection, new_users: &[NewUser<'_>]) -> QueryResult<usize> {
    let created = now();
    let rows: Vec<NewUserRow<'_>> = new_users.iter().map(|new| NewUserRow::from_new(new, created)).collect();
    // Multi-row INSERT is not in MultiConnection's common subset; each backend has its own.
    match conn {
        DbConnection::Sqlite(sqlite) => diesel::insert_into(users::table).values(&rows).execute(sqlite),
        DbConnection::Postgres(pg) => diesel::insert_into(users::table).values(&rows).execute(pg),
    }
}

/// The ids of the users with these usernames.
pub fn ids_of_usernames(conn: &mut DbConnection, usernames: &[&str]) -> QueryResult<Vec<i64>> {
    users::table.filter(users::username.eq_any(usernames)).select(users::id).load(conn)
}

/// Which of these usernames and e-mail skeletons are already taken.
pub fn taken(
    conn: &mut DbConnection,
    usernames: &[&str],
    skeletons: &[&str],
) -> QueryResult<(Vec<String>, Vec<String>)> {
    let names = users::table.filter(users::username.eq_any(usernames)).select(users::username).load(conn)?;
    let looks: Vec<Option<String>> =
        users::table.filter(users::email_skeleton.eq_any(skeletons)).select(users::email_skeleton).load(conn)?;
    Ok((names, looks.into_iter().flatten().collect()))
}

/// Fills in the skeleton of addresses stored before it existed (run after the migrations). An
/// address whose skeleton another account already holds keeps none, and is reported.
pub fn backfill_email_skeletons(conn: &mut DbConnection) -> QueryResult<usize> {
    let mut filled = 0;
    let mut after = 0i64;
    loop {
        let batch: Vec<(i64, String)> = users::table
            .filter(users::email_skeleton.is_null())
            .filter(users::id.gt(after))
            .order(users::id)
            .select((users::id, users::email))
            .limit(1000)
            .load(conn)?;
        let Some((last, _)) = batch.last() else { return Ok(filled) };
        after = *last;
        for (id, email) in batch {
            let skeleton = crate::domain::email::skeleton(&email);
            let clash: i64 = users::table.filter(users::email_skeleton.eq(&skeleton)).count().get_result(conn)?;
            if clash > 0 {
                tracing::warn!(
                    user_id = id,
                    "this user's e-mail address looks the same as another account's; change one of them"
                );
                continue;
            }
            diesel::update(users::table.find(id)).set(users::email_skeleton.eq(skeleton)).execute(conn)?;
            filled += 1;
        }
    }
}

/// Fills in the search text of users stored before it existed (run after the migrations), a
/// thousand per transaction.
pub fn backfill_search_text(conn: &mut DbConnection) -> QueryResult<usize> {
    let mut filled = 0;
    loop {
        // Written out (not bound) so that both databases use the partial index of such rows.
        let batch: Vec<(i64, String, String, String)> = users::table
            .filter(diesel::dsl::sql::<diesel::sql_types::Bool>("search_text = ''"))
            .order(users::id)
            .select((users::id, users::username, users::email, users::display_name))
            .limit(1000)
            .load(conn)?;
        if batch.is_empty() {
            return Ok(filled);
        }
        super::write_transaction(conn, |conn| {
            for (id, username, email, display_name) in &batch {
                diesel::update(users::table.find(id))
                    .set(users::search_text.eq(user_search_text(username, email, display_name)))
                    .execute(conn)?;
            }
            Ok::<_, DieselError>(())
        })?;
        filled += batch.len();
    }
}

/// Refuses a username, or an email (or one that looks the same), that another user (not
/// `except`) already has.
pub fn ensure_unique(
    conn: &mut DbConnection,
    except: Option<i64>,
    username: &str,
    email: Option<&Email>,
) -> Result<(), InsertUserError> {
    let others = || users::table.filter(users::id.ne(except.unwrap_or(-1)));
    let username_taken: i64 = others().filter(users::username.eq(username)).count().get_result(conn)?;
    if username_taken > 0 {
        return Err(InsertUserError::UsernameTaken);
    }
    let Some(email) = email else { return Ok(()) };
    let email_taken: i64 = others().filter(users::email.eq(email.as_str())).count().get_result(conn)?;
    if email_taken > 0 {
        return Err(InsertUserError::EmailTaken);
    }
    let look_alike: i64 = others().filter(users::email_skeleton.eq(email.skeleton())).count().get_result(conn)?;
    if look_alike > 0 {
        return Err(InsertUserError::EmailLookalike);
    }
    Ok(())
}

fn unique_violation(error: DieselError) -> InsertUserError {
    match error {
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, ref info) => {
            let names =
                |part: &str| info.message().contains(part) || info.constraint_name().is_some_and(|c| c.contains(part));
            if names("skeleton") {
                InsertUserError::EmailLookalike
            } else if names("email") {
                InsertUserError::EmailTaken
            } else {
                InsertUserError::UsernameTaken
            }
        }
        other => InsertUserError::Database(other),
    }
}

/// The editable profile fields; `None` leaves a field as it is.
#[derive(Default)]
pub struct ProfileChanges<'a> {
    pub username: Option<&'a Username>,
    pub email: Option<&'a Email>,
    pub display_name: Option<&'a DisplayName>,
    pub role: Option<Role>,
    pub time_zone: Option<TimeZone>,
}

/// Applies the changes; returns the updated user. Unique collisions are reported by field.
pub fn update_profile(
    conn: &mut DbConnection,
    user: &User,
    changes: &ProfileChanges<'_>,
) -> Result<User, InsertUserError> {
    let username = changes.username.map_or(user.username.as_str(), Username::as_str);
    let display_name = changes.display_name.map_or(user.display_name.as_str(), DisplayName::as_str);
    let role = changes.role.unwrap_or(user.role);
    let time_zone = changes.time_zone.unwrap_or(user.time_zone);
    // Only a new address is checked (an old pair that clashes stays usable as it is).
    let new_email = changes.email.filter(|email| **email != user.email);
    ensure_unique(conn, Some(user.id), username, new_email)?;
    let (email, email_skeleton) = match new_email {
        Some(email) => (email.as_str(), Some(email.skeleton())),
        None => (user.email.as_str(), user.email_skeleton.clone()),
    };
    diesel::update(users::table.find(user.id))
        .set((
            users::username.eq(username),
            users::email.eq(email),
            users::email_skeleton.eq(email_skeleton),
            users::display_name.eq(display_name),
            users::search_name.eq(display_name.to_lowercase()),
            users::search_text.eq(user_search_text(username, email, display_name)),
            users::role.eq(role.as_str()),
            users::time_zone.eq(time_zone.name()),
            users::updated_at.eq(now()),
        ))
        .returning(users::all_columns)
        .get_result(conn)
        .map_err(unique_violation)
}

pub fn record_login(conn: &mut DbConnection, id: i64) -> QueryResult<()> {
    diesel::update(users::table.find(id)).set(users::last_login_at.eq(now())).execute(conn)?;
    Ok(())
}

/// Returns false when no such user exists.
pub fn set_password_hash(
    conn: &mut DbConnection,
    id: i64,
    password_hash: &str,
    must_change_password: bool,
) -> QueryResult<bool> {
    let updated = diesel::update(users::table.find(id))
        .set((
            users::password_hash.eq(password_hash),
            users::must_change_password.eq(must_change_password),
            users::updated_at.eq(now()),
        ))
        .execute(conn)?;
    Ok(updated == 1)
}

pub fn set_active(conn: &mut DbConnection, id: i64, active: bool) -> QueryResult<bool> {
    let updated = diesel::update(users::table.find(id))
        .set((users::is_active.eq(active), users::updated_at.eq(now())))
        .execute(conn)?;
    Ok(updated == 1)
}

pub fn delete(conn: &mut DbConnection, id: i64) -> QueryResult<bool> {
    Ok(diesel::delete(users::table.find(id)).execute(conn)? == 1)
}

pub fn count_active_admins(conn: &mut DbConnection) -> QueryResult<i64> {
    users::table.filter(users::role.eq(Role::Admin.as_str())).filter(users::is_active.eq(true)).count().get_result(conn)
}

#[derive(Debug, Clone)]
pub struct UserCounts {
    pub total: i64,
    pub active: i64,
    pub admins: i64,
}

pub fn counts(conn: &mut DbConnection) -> QueryResult<UserCounts> {
    Ok(UserCounts {
        total: users::table.count().get_result(conn)?,
        active: users::table.filter(users::is_active.eq(true)).count().get_result(conn)?,
        admins: count_active_admins(conn)?,
    })
}
