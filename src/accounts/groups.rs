//! Every change to groups: create, rename, delete, members in and out, managers. Each is one
//! transaction with its audit row; a change to who is in a group renews the sessions of the
//! people it touches, so their next token (within two seconds, on every instance) says what
//! is true now, and nobody is signed out.
use super::service::Accounts;
use super::{AccountError, FieldErrors};
use crate::db::audit::{self, Action, Actor};
use crate::db::groups::{self, Group, GroupFields, GroupWriteError};
use crate::db::users::{self, now};
use crate::db::{DbConnection, write_transaction};
use crate::domain::GroupName;

/// Longest display name and description of a group.
const MAX_GROUP_DISPLAY_NAME_CHARS: usize = 100;
const MAX_GROUP_DESCRIPTION_CHARS: usize = 500;
/// Names listed in one audit row; more are counted.
const NAMES_IN_AUDIT: usize = 20;

/// A group's fields as a form or the command line gave them.
pub struct GroupInput<'a> {
    pub name: &'a str,
    pub display_name: &'a str,
    pub description: &'a str,
}

/// The fields checked: a valid name, a display name (the name when blank) and description
/// within bounds, no control characters.
pub struct ValidGroup {
    pub name: GroupName,
    pub display_name: String,
    pub description: String,
}

impl ValidGroup {
    pub fn parse(input: &GroupInput<'_>) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::default();
        let name = errors.check("name", GroupName::parse(input.name));
        let display_name = input.display_name.trim();
        let description = input.description.trim();
        if display_name.chars().count() > MAX_GROUP_DISPLAY_NAME_CHARS {
            errors.add("display_name", format!("At most {MAX_GROUP_DISPLAY_NAME_CHARS} characters"));
        } else if display_name.chars().any(char::is_control) {
            errors.add("display_name", "A display name cannot contain control characters");
        }
        if description.chars().count() > MAX_GROUP_DESCRIPTION_CHARS {
            errors.add("description", format!("At most {MAX_GROUP_DESCRIPTION_CHARS} characters"));
        } else if description.chars().any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t') {
            errors.add("description", "A description cannot contain control characters");
        }
        match name {
            Some(name) if errors.is_empty() => {
                let display_name = if display_name.is_empty() { name.to_string() } else { display_name.to_owned() };
                Ok(Self { name, display_name, description: description.to_owned() })
            }
            _ => Err(errors),
        }
    }

    fn fields(&self) -> GroupFields<'_> {
        GroupFields { name: &self.name, display_name: &self.display_name, description: &self.description }
    }
}

impl From<GroupWriteError> for AccountError {
    fn from(error: GroupWriteError) -> Self {
        match error {
            GroupWriteError::NameTaken => Self::Field(("name", error.to_string())),
            GroupWriteError::Database(error) => Self::Database(error),
        }
    }
}

/// Who is changing a group's members: an administrator, or one of the group's managers
/// (checked again inside the change's transaction).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum MemberChanger {
    Admin,
    Manager,
}

fn load_group(conn: &mut DbConnection, id: i64) -> Result<Group, AccountError> {
    groups::find(conn, id)?.ok_or(AccountError::NotFound)
}

/// "alice, bob and 3 more" for the audit row.
fn names_for_audit(conn: &mut DbConnection, user_ids: &[i64]) -> Result<String, AccountError> {
    let shown = &user_ids[..user_ids.len().min(NAMES_IN_AUDIT)];
    let mut names: Vec<String> = Vec::new();
    for id in shown {
        if let Some(user) = users::find_by_id(conn, *id)? {
            names.push(user.username.to_string());
        }
    }
    let more = user_ids.len() - shown.len();
    Ok(if more > 0 { format!("{} and {more} more", names.join(", ")) } else { names.join(", ") })
}

/// Refuses a manager's change to a group they do not manage (as if there were no such group).
fn ensure_may_change(
    conn: &mut DbConnection,
    actor: &Actor,
    group_id: i64,
    by: MemberChanger,
) -> Result<(), AccountError> {
    if by == MemberChanger::Admin {
        return Ok(());
    }
    let manages = match &actor.user {
        Some((actor_id, _)) => groups::is_manager(conn, group_id, *actor_id)?,
        None => false,
    };
    if manages { Ok(()) } else { Err(AccountError::NotFound) }
}

/// A group deleted between a page's load and its form's submit, or a user deleted meanwhile:
/// the insert's foreign key refuses it, and that is "no such group or user", not an error.
fn gone(error: diesel::result::Error) -> AccountError {
    use diesel::result::{DatabaseErrorKind, Error};
    match error {
        Error::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _) => AccountError::NotFound,
        other => AccountError::Database(other),
    }
}

/// their sessions.
/// Who is in which group changed for `user_ids`: their sessions renew their tokens (which
/// carry the groups), and their grants to apps that no longer admit them end, the apps told.
fn membership_changed(conn: &mut DbConnection, user_ids: &[i64], at: chrono::NaiveDateTime) -> diesel::QueryResult<()> {
    groups::renew_sessions_of(conn, user_ids, at)?;
    crate::db::oauth::revoke_grants_no_longer_admitted(conn, user_ids, at)?;
    Ok(())
}

pub fn create_group(conn: &mut DbConnection, actor: &Actor, group: &ValidGroup) -> Result<Group, AccountError> {
    write_transaction(conn, |conn| {
        let created = groups::insert(conn, &group.fields(), now())?;
        let details = format!("{} ({})", created.name, created.display_name);
        audit::record(conn, actor, Action::GroupCreate, None, &details)?;
        Ok(created)
    })
}

pub fn update_group(
    conn: &mut DbConnection,
    actor: &Actor,
    id: i64,
    group: &ValidGroup,
) -> Result<Group, AccountError> {
    write_transaction(conn, |conn| {
        let before = load_group(conn, id)?;
        let after = groups::update(conn, id, &group.fields())?.ok_or(AccountError::NotFound)?;
        let mut changed = Vec::new();
        if before.name != after.name {
            changed.push(format!("name: {} → {}", before.name, after.name));
            let members = groups::member_ids(conn, id)?;
            membership_changed(conn, &members, now())?;
        }
        if before.display_name != after.display_name {
            changed.push(format!("display name: {} → {}", before.display_name, after.display_name));
        }
        if before.description != after.description {
            changed.push("description changed".to_owned());
        }
        if !changed.is_empty() {
            let details = format!("{}: {}", after.name, changed.join("; "));
            audit::record(conn, actor, Action::GroupUpdate, None, &details)?;
        }
        Ok(after)
    })
}

/// needs the group stops letting them in within two seconds).
pub fn delete_group(conn: &mut DbConnection, actor: &Actor, id: i64) -> Result<(Group, usize), AccountError> {
    write_transaction(conn, |conn| {
        let group = load_group(conn, id)?;
        let members = groups::member_ids(conn, id)?;
        membership_changed(conn, &members, now())?;
        groups::delete(conn, id)?;
        let details = format!("{} ({} members)", group.name, members.len());
        audit::record(conn, actor, Action::GroupDelete, None, &details)?;
        Ok((group, members.len()))
    })
}

/// not exist).
pub fn add_members(
    conn: &mut DbConnection,
    actor: &Actor,
    group_id: i64,
    user_ids: &[i64],
    by: MemberChanger,
) -> Result<Vec<i64>, AccountError> {
    write_transaction(conn, |conn| {
        ensure_may_change(conn, actor, group_id, by)?;
        let group = load_group(conn, group_id)?;
        let added = groups::add_members(conn, group_id, user_ids, now()).map_err(gone)?;
        if !added.is_empty() {
            membership_changed(conn, &added, now())?;
            let details = format!("{}: {}", group.name, names_for_audit(conn, &added)?);
            audit::record(conn, actor, Action::GroupMembersAdd, None, &details)?;
        }
        Ok(added)
    })
}

/// Removes users from a group; the ids that were members.
pub fn remove_members(
    conn: &mut DbConnection,
    actor: &Actor,
    group_id: i64,
    user_ids: &[i64],
    by: MemberChanger,
) -> Result<Vec<i64>, AccountError> {
    write_transaction(conn, |conn| {
        ensure_may_change(conn, actor, group_id, by)?;
        let group = load_group(conn, group_id)?;
        let removed = groups::remove_members(conn, group_id, user_ids)?;
        if !removed.is_empty() {
            membership_changed(conn, &removed, now())?;
            let details = format!("{}: {}", group.name, names_for_audit(conn, &removed)?);
            audit::record(conn, actor, Action::GroupMembersRemove, None, &details)?;
        }
        Ok(removed)
    })
}

/// Makes a user a manager of a group, or not (administrators only).
pub fn set_group_manager(
    conn: &mut DbConnection,
    actor: &Actor,
    group_id: i64,
    user_id: i64,
    manager: bool,
) -> Result<(Group, String), AccountError> {
    write_transaction(conn, |conn| {
        let group = load_group(conn, group_id)?;
        let user = users::find_by_id(conn, user_id)?.ok_or(AccountError::NotFound)?;
        if groups::set_manager(conn, group_id, user_id, manager).map_err(gone)? {
            let what = if manager { "now manages" } else { "no longer manages" };
            let details = format!("{} {what} {}", user.username, group.name);
            audit::record(conn, actor, Action::GroupManagersChange, Some((user.id, &user.username)), &details)?;
        }
        Ok((group, user.username.to_string()))
    })
}

impl Accounts<'_> {
    pub async fn create_group(&self, actor: Actor, group: ValidGroup) -> Result<Group, AccountError> {
        crate::db::run(self.pool, move |conn| create_group(conn, &actor, &group)).await
    }

    /// their sessions.
    pub async fn update_group(&self, actor: Actor, id: i64, group: ValidGroup) -> Result<Group, AccountError> {
        self.change(move |conn| update_group(conn, &actor, id, &group)).await
    }

    /// needs the group stops letting them in within two seconds).
    pub async fn delete_group(&self, actor: Actor, id: i64) -> Result<(Group, usize), AccountError> {
        self.change(move |conn| delete_group(conn, &actor, id)).await
    }

    /// not exist).
    pub async fn add_members(
        &self,
        actor: Actor,
        group_id: i64,
        user_ids: Vec<i64>,
        by: MemberChanger,
    ) -> Result<Vec<i64>, AccountError> {
        self.change(move |conn| add_members(conn, &actor, group_id, &user_ids, by)).await
    }

    /// Removes users from a group; the ids that were members.
    pub async fn remove_members(
        &self,
        actor: Actor,
        group_id: i64,
        user_ids: Vec<i64>,
        by: MemberChanger,
    ) -> Result<Vec<i64>, AccountError> {
        self.change(move |conn| remove_members(conn, &actor, group_id, &user_ids, by)).await
    }

    /// Makes a user a manager of a group, or not (administrators only).
    pub async fn set_group_manager(
        &self,
        actor: Actor,
        group_id: i64,
        user_id: i64,
        manager: bool,
    ) -> Result<(Group, String), AccountError> {
        crate::db::run(self.pool, move |conn| set_group_manager(conn, &actor, group_id, user_id, manager)).await
    }
}
