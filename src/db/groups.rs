//! Queries on groups (`user_groups`), their members (`group_members`) and managers
//! (`group_managers`), and the renewal of the sessions whose tokens name a group that changed
//! (`renewed_sessions`, read with the revoked sessions by every instance).
use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

use super::DbConnection;
use super::schema::{group_managers, group_members, renewed_sessions, sessions, user_groups, users};
use crate::domain::GroupName;

/// Users added or removed per statement (bind-parameter limits stay far away).
const BATCH: usize = 500;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub id: i64,
    pub name: GroupName,
    pub display_name: String,
    pub description: String,
    pub created_at: NaiveDateTime,
}

type GroupColumns =
    (user_groups::id, user_groups::name, user_groups::display_name, user_groups::description, user_groups::created_at);
const COLUMNS: GroupColumns =
    (user_groups::id, user_groups::name, user_groups::display_name, user_groups::description, user_groups::created_at);
type GroupRow = (i64, String, String, String, NaiveDateTime);

fn group((id, name, display_name, description, created_at): GroupRow) -> Group {
    Group { id, name: GroupName::from_stored(name), display_name, description, created_at }
}

/// A group with how many members it has (the groups list).
#[derive(Debug, Clone)]
pub struct GroupSummary {
    pub group: Group,
    pub members: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum GroupWriteError {
    #[error("A group with this name exists already")]
    NameTaken,
    #[error(transparent)]
    Database(#[from] DieselError),
}

fn name_clash(error: DieselError) -> GroupWriteError {
    match error {
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => GroupWriteError::NameTaken,
        other => GroupWriteError::Database(other),
    }
}

/// What a group is called and says about itself.
pub struct GroupFields<'a> {
    pub name: &'a GroupName,
    pub display_name: &'a str,
    pub description: &'a str,
}

pub fn insert(conn: &mut DbConnection, fields: &GroupFields<'_>, at: NaiveDateTime) -> Result<Group, GroupWriteError> {
    if find_by_name(conn, fields.name)?.is_some() {
        return Err(GroupWriteError::NameTaken);
    }
    diesel::insert_into(user_groups::table)
        .values((
            user_groups::name.eq(fields.name.as_str()),
            user_groups::display_name.eq(fields.display_name),
            user_groups::description.eq(fields.description),
            user_groups::created_at.eq(at),
        ))
        .returning(COLUMNS)
        .get_result::<GroupRow>(conn)
        .map(group)
        .map_err(name_clash)
}

pub fn update(conn: &mut DbConnection, id: i64, fields: &GroupFields<'_>) -> Result<Option<Group>, GroupWriteError> {
    if find_by_name(conn, fields.name)?.is_some_and(|other| other.id != id) {
        return Err(GroupWriteError::NameTaken);
    }
    diesel::update(user_groups::table.find(id))
        .set((
            user_groups::name.eq(fields.name.as_str()),
            user_groups::display_name.eq(fields.display_name),
            user_groups::description.eq(fields.description),
        ))
        .returning(COLUMNS)
        .get_result::<GroupRow>(conn)
        .optional()
        .map(|row| row.map(group))
        .map_err(name_clash)
}

/// Deletes the group (its memberships and managers go with it); whether there was one.
pub fn delete(conn: &mut DbConnection, id: i64) -> QueryResult<bool> {
    // Explicitly, not only by the foreign keys' cascade: SQLite enforces those only with
    // `foreign_keys` on, and no orphan row may stay behind either way.
    diesel::delete(group_members::table.filter(group_members::group_id.eq(id))).execute(conn)?;
    diesel::delete(group_managers::table.filter(group_managers::group_id.eq(id))).execute(conn)?;
    Ok(diesel::delete(user_groups::table.find(id)).execute(conn)? > 0)
}

pub fn find(conn: &mut DbConnection, id: i64) -> QueryResult<Option<Group>> {
    user_groups::table.find(id).select(COLUMNS).first::<GroupRow>(conn).optional().map(|row| row.map(group))
}

pub fn find_by_name(conn: &mut DbConnection, name: &GroupName) -> QueryResult<Option<Group>> {
    user_groups::table
        .filter(user_groups::name.eq(name.as_str()))
        .select(COLUMNS)
        .first::<GroupRow>(conn)
        .optional()
        .map(|row| row.map(group))
}

/// The groups of these names that exist (in name order).
pub fn find_by_names(conn: &mut DbConnection, names: &[&str]) -> QueryResult<Vec<Group>> {
    let mut found = Vec::new();
    for chunk in names.chunks(BATCH) {
        let rows: Vec<GroupRow> =
            user_groups::table.filter(user_groups::name.eq_any(chunk)).select(COLUMNS).load(conn)?;
        found.extend(rows.into_iter().map(group));
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

/// A page of groups in name order after `after` (names starting with `search`, or containing
/// it in the name or display name), with their member counts.
pub fn list(
    conn: &mut DbConnection,
    search: Option<&str>,
    after: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<GroupSummary>> {
    let mut query = user_groups::table.select(COLUMNS).order(user_groups::name.asc()).limit(limit).into_boxed();
    if let Some(after) = after {
        query = query.filter(user_groups::name.gt(after.to_owned()));
    }
    if let Some(search) = search.map(str::to_lowercase).filter(|search| !search.is_empty()) {
        let pattern = format!("%{}%", search.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"));
        query = query.filter(
            user_groups::name
                .like(pattern.clone())
                .escape('\\')
                .or(user_groups::display_name.like(pattern).escape('\\')),
        );
    }
    let groups: Vec<Group> = query.load::<GroupRow>(conn)?.into_iter().map(group).collect();
    let ids: Vec<i64> = groups.iter().map(|group| group.id).collect();
    let counts: Vec<(i64, i64)> = group_members::table
        .filter(group_members::group_id.eq_any(&ids))
        .group_by(group_members::group_id)
        .select((group_members::group_id, diesel::dsl::count_star()))
        .load(conn)?;
    Ok(groups
        .into_iter()
        .map(|group| {
            let members = counts.iter().find(|(id, _)| *id == group.id).map_or(0, |(_, count)| *count);
            GroupSummary { group, members }
        })
        .collect())
}

/// The first `limit` groups' (name, display name), in name order: choices, without counts.
pub fn names(conn: &mut DbConnection, limit: i64) -> QueryResult<Vec<(String, String)>> {
    user_groups::table
        .order(user_groups::name.asc())
        .limit(limit)
        .select((user_groups::name, user_groups::display_name))
        .load(conn)
}

/// The first `limit` groups in name order, without counts.
pub fn first(conn: &mut DbConnection, limit: i64) -> QueryResult<Vec<Group>> {
    let rows: Vec<GroupRow> =
        user_groups::table.order(user_groups::name.asc()).limit(limit).select(COLUMNS).load(conn)?;
    Ok(rows.into_iter().map(group).collect())
}

pub fn count(conn: &mut DbConnection) -> QueryResult<i64> {
    user_groups::table.count().get_result(conn)
}

pub fn member_count(conn: &mut DbConnection, group_id: i64) -> QueryResult<i64> {
    group_members::table.filter(group_members::group_id.eq(group_id)).count().get_result(conn)
}

/// Adds these users (those that exist and are not members yet); how many were added.
pub fn add_members(
    conn: &mut DbConnection,
    group_id: i64,
    user_ids: &[i64],
    at: NaiveDateTime,
) -> QueryResult<Vec<i64>> {
    let mut added = Vec::new();
    for chunk in user_ids.chunks(BATCH) {
        let existing: Vec<i64> = users::table.filter(users::id.eq_any(chunk)).select(users::id).load(conn)?;
        let already: Vec<i64> = group_members::table
            .filter(group_members::group_id.eq(group_id))
            .filter(group_members::user_id.eq_any(&existing))
            .select(group_members::user_id)
            .load(conn)?;
        let mut new: Vec<i64> = existing.into_iter().filter(|id| !already.contains(id)).collect();
        new.sort_unstable();
        new.dedup();
        let rows: Vec<_> = new
            .iter()
            .map(|user_id| {
                (
                    group_members::group_id.eq(group_id),
                    group_members::user_id.eq(*user_id),
                    group_members::added_at.eq(at),
                )
            })
            .collect();
        // Multi-row INSERT is not in MultiConnection's common subset; each backend has its own.
        match conn {
            DbConnection::Sqlite(sqlite) => diesel::insert_into(group_members::table).values(&rows).execute(sqlite)?,
            DbConnection::Postgres(pg) => diesel::insert_into(group_members::table).values(&rows).execute(pg)?,
        };
        added.extend(new);
    }
    Ok(added)
}

/// Removes these users from the group; the ones that were members.
pub fn remove_members(conn: &mut DbConnection, group_id: i64, user_ids: &[i64]) -> QueryResult<Vec<i64>> {
    let mut removed = Vec::new();
    for chunk in user_ids.chunks(BATCH) {
        let members: Vec<i64> = group_members::table
            .filter(group_members::group_id.eq(group_id))
            .filter(group_members::user_id.eq_any(chunk))
            .select(group_members::user_id)
            .load(conn)?;
        diesel::delete(
            group_members::table
                .filter(group_members::group_id.eq(group_id))
                .filter(group_members::user_id.eq_any(&members)),
        )
        .execute(conn)?;
        removed.extend(members);
    }
    Ok(removed)
}

/// Which of these users are members.
pub fn members_among(conn: &mut DbConnection, group_id: i64, user_ids: &[i64]) -> QueryResult<Vec<i64>> {
    group_members::table
        .filter(group_members::group_id.eq(group_id))
        .filter(group_members::user_id.eq_any(user_ids))
        .select(group_members::user_id)
        .load(conn)
}

/// Every member's id (a group's delete renews their sessions).
pub fn member_ids(conn: &mut DbConnection, group_id: i64) -> QueryResult<Vec<i64>> {
    group_members::table.filter(group_members::group_id.eq(group_id)).select(group_members::user_id).load(conn)
}

/// The groups a user is in, in name order.
pub fn groups_of(conn: &mut DbConnection, user_id: i64) -> QueryResult<Vec<Group>> {
    let rows: Vec<GroupRow> = group_members::table
        .inner_join(user_groups::table)
        .filter(group_members::user_id.eq(user_id))
        .order(user_groups::name.asc())
        .select(COLUMNS)
        .load(conn)?;
    Ok(rows.into_iter().map(group).collect())
}

/// The names of the groups of each of these users (the CSV export), in name order.
pub fn names_of_users(conn: &mut DbConnection, user_ids: &[i64]) -> QueryResult<Vec<(i64, String)>> {
    let mut rows = Vec::new();
    for chunk in user_ids.chunks(BATCH) {
        let part: Vec<(i64, String)> = group_members::table
            .inner_join(user_groups::table)
            .filter(group_members::user_id.eq_any(chunk))
            .order((group_members::user_id.asc(), user_groups::name.asc()))
            .select((group_members::user_id, user_groups::name))
            .load(conn)?;
        rows.extend(part);
    }
    Ok(rows)
}

/// The groups `user_id` manages, in name order.
pub fn managed_by(conn: &mut DbConnection, user_id: i64) -> QueryResult<Vec<Group>> {
    let rows: Vec<GroupRow> = group_managers::table
        .inner_join(user_groups::table)
        .filter(group_managers::user_id.eq(user_id))
        .order(user_groups::name.asc())
        .select(COLUMNS)
        .load(conn)?;
    Ok(rows.into_iter().map(group).collect())
}

pub fn is_manager(conn: &mut DbConnection, group_id: i64, user_id: i64) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        group_managers::table.filter(group_managers::group_id.eq(group_id)).filter(group_managers::user_id.eq(user_id)),
    ))
    .get_result(conn)
}

/// The managers of a group: (id, username), in name order.
pub fn managers_of(conn: &mut DbConnection, group_id: i64) -> QueryResult<Vec<(i64, String)>> {
    group_managers::table
        .inner_join(users::table.on(users::id.eq(group_managers::user_id)))
        .filter(group_managers::group_id.eq(group_id))
        .order(users::username.asc())
        .select((users::id, users::username))
        .load(conn)
}

/// Makes `user_id` a manager of the group, or not; whether anything changed.
pub fn set_manager(conn: &mut DbConnection, group_id: i64, user_id: i64, manager: bool) -> QueryResult<bool> {
    let now_manager = is_manager(conn, group_id, user_id)?;
    if now_manager == manager {
        return Ok(false);
    }
    if manager {
        diesel::insert_into(group_managers::table)
            .values((group_managers::group_id.eq(group_id), group_managers::user_id.eq(user_id)))
            .execute(conn)?;
    } else {
        diesel::delete(
            group_managers::table
                .filter(group_managers::group_id.eq(group_id))
                .filter(group_managers::user_id.eq(user_id)),
        )
        .execute(conn)?;
    }
    Ok(true)
}

/// The sessions of these users must renew their tokens (what the tokens say changed at
/// `at`): every instance refuses tokens issued before as expired within a second, and the
/// renewed token says what is true now. Sessions go on; nobody is signed out.
pub fn renew_sessions_of(conn: &mut DbConnection, user_ids: &[i64], at: NaiveDateTime) -> QueryResult<usize> {
    let mut renewed = 0;
    for chunk in user_ids.chunks(BATCH) {
        let sids: Vec<String> =
            sessions::table.filter(sessions::user_id.eq_any(chunk)).select(sessions::sid).load(conn)?;
        diesel::delete(renewed_sessions::table.filter(renewed_sessions::sid.eq_any(&sids))).execute(conn)?;
        let rows: Vec<_> =
            sids.iter().map(|sid| (renewed_sessions::sid.eq(sid), renewed_sessions::changed_at.eq(at))).collect();
        for rows in rows.chunks(BATCH) {
            renewed += match conn {
                DbConnection::Sqlite(sqlite) => {
                    diesel::insert_into(renewed_sessions::table).values(rows).execute(sqlite)?
                }
                DbConnection::Postgres(pg) => diesel::insert_into(renewed_sessions::table).values(rows).execute(pg)?,
            };
        }
    }
    Ok(renewed)
}

/// Renewals that still matter (tokens issued before `cutoff` have expired anyway).
pub fn renewed_since(conn: &mut DbConnection, cutoff: NaiveDateTime) -> QueryResult<Vec<(String, NaiveDateTime)>> {
    renewed_sessions::table
        .filter(renewed_sessions::changed_at.gt(cutoff))
        .select((renewed_sessions::sid, renewed_sessions::changed_at))
        .load(conn)
}

/// When the claims of session `sid` last changed, if they did lately.
pub fn renewal_of(conn: &mut DbConnection, sid: &str) -> QueryResult<Option<NaiveDateTime>> {
    renewed_sessions::table.find(sid).select(renewed_sessions::changed_at).first(conn).optional()
}

/// Deletes renewals older than `cutoff`; how many.
pub fn prune_renewals(conn: &mut DbConnection, cutoff: NaiveDateTime) -> QueryResult<usize> {
    diesel::delete(renewed_sessions::table.filter(renewed_sessions::changed_at.le(cutoff))).execute(conn)
}
