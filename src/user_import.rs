//! `portcullis user import FILE.csv`: check every row first, report all bad rows with their
//! line numbers, and insert either every user or none.
use std::collections::HashMap;

use crate::auth::password::{NO_PASSWORD, argon2_phc_problem};
use crate::db::audit::{self, Action, Actor};
use crate::db::groups::{GroupFields, GroupWriteError};
use crate::db::users::{self, NewUser};
use crate::db::{DbConnection, write_transaction};
use crate::domain::{DisplayName, Email, GroupName, Role, Username};

const REQUIRED_COLUMNS: [&str; 4] = ["username", "email", "display_name", "role"];
const CHUNK: usize = 500;
const MAX_REPORTED_ROWS: usize = 100;
/// Groups one row may name (a user in more is added to them on their group pages).
const MAX_GROUPS_PER_ROW: usize = 200;
/// Groups one import may create (the names it uses that do not exist yet).
const MAX_NEW_GROUPS: usize = 1000;

#[derive(Debug)]
pub struct BadRow {
    pub line: u64,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("the file is not usable: {0}")]
    File(String),
    #[error("{} row(s) are not valid; nothing was imported", .0.len())]
    BadRows(Vec<BadRow>),
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
}

struct Row {
    line: u64,
    username: Username,
    email: Email,
    display_name: DisplayName,
    role: Role,
    password_hash: Option<String>,
    /// From the optional `groups` column: names separated by `;`.
    groups: Vec<GroupName>,
}

/// What an import did: users written, and the groups it made for names that did not exist.
#[derive(Debug, Default)]
pub struct Imported {
    pub users: usize,
    pub created_groups: Vec<String>,
    pub memberships: usize,
}

/// The `groups` cell: names separated by `;` (blank: none).
fn parse_groups(cell: &str, problems: &mut Vec<String>) -> Vec<GroupName> {
    let names: Vec<&str> = cell.split(';').map(str::trim).filter(|name| !name.is_empty()).collect();
    if names.len() > MAX_GROUPS_PER_ROW {
        problems.push(format!("groups names {} groups; one row may name at most {MAX_GROUPS_PER_ROW}", names.len()));
        return Vec::new();
    }
    let mut groups = Vec::new();
    for name in names {
        match GroupName::parse(name) {
            Ok(group) if !groups.contains(&group) => groups.push(group),
            Ok(_) => {}
            Err(error) => {
                let shown: String = name.chars().take(40).collect();
                problems.push(format!("groups: {shown:?} is not a group's name ({})", error.0));
            }
        }
    }
    groups
}

/// Parses and checks the whole file; returns the rows or every problem found.
fn read_rows(input: impl std::io::Read) -> Result<Vec<Row>, ImportError> {
    let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::None).from_reader(input);
    let headers = reader.headers().map_err(|error| ImportError::File(error.to_string()))?.clone();
    let column = |name: &str| headers.iter().position(|header| header.trim() == name);
    let mut positions = Vec::new();
    for name in REQUIRED_COLUMNS {
        positions.push(column(name).ok_or_else(|| {
            ImportError::File(format!(
                "the header must name the columns {} (missing {name})",
                REQUIRED_COLUMNS.join(", ")
            ))
        })?);
    }
    let hash_column = column("password_hash");
    let groups_column = column("groups");

    let mut rows = Vec::new();
    let mut bad = Vec::new();
    let mut seen_usernames: HashMap<String, u64> = HashMap::new();
    let mut seen_emails: HashMap<String, u64> = HashMap::new();
    for record in reader.records() {
        let record = match record {
            Ok(record) => record,
            Err(error) => {
                let line = error.position().map_or(0, |p| p.line());
                bad.push(BadRow { line, message: error.to_string() });
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line());
        // Cells as `user export` wrote them: a defusing apostrophe comes off again.
        let field = |index: usize| crate::export::restore_cell(record.get(index).unwrap_or_default());
        let mut problems = Vec::new();
        let username = Username::parse(field(positions[0])).map_err(|e| problems.push(e.0)).ok();
        let email = Email::parse(field(positions[1])).map_err(|e| problems.push(e.0)).ok();
        let display_source =
            if field(positions[2]).trim().is_empty() { field(positions[0]) } else { field(positions[2]) };
        let display_name = DisplayName::parse(display_source).map_err(|e| problems.push(e.0)).ok();
        let role_text = if field(positions[3]).is_empty() { "user" } else { field(positions[3]) };
        let role = Role::parse(role_text).map_err(|e| problems.push(e.0)).ok();
        let password_hash = hash_column.map(field).filter(|hash| !hash.is_empty()).map(str::to_owned);
        let groups = groups_column.map(|index| parse_groups(field(index), &mut problems)).unwrap_or_default();
        if let Some(problem) = password_hash.as_deref().and_then(argon2_phc_problem) {
            problems.push(format!("password_hash is refused: {problem}"));
        }
        if let Some(name) = &username
            && let Some(first) = seen_usernames.insert(name.as_str().to_owned(), line)
        {
            problems.push(format!("username {} is also on line {first}", name.as_str()));
        }
        // Keyed by what the address looks like: a look-alike of an earlier row counts as it.
        if let Some(address) = &email
            && let Some(first) = seen_emails.insert(address.skeleton(), line)
        {
            problems.push(format!("email {} is also on line {first} (or one that looks the same)", address.as_str()));
        }
        match (username, email, display_name, role) {
            (Some(username), Some(email), Some(display_name), Some(role)) if problems.is_empty() => {
                rows.push(Row { line, username, email, display_name, role, password_hash, groups })
            }
            _ => bad.push(BadRow { line, message: problems.join("; ") }),
        }
    }
    if bad.is_empty() { Ok(rows) } else { Err(ImportError::BadRows(bad)) }
}

/// Imports `input`, calling `progress` with the number of rows written so far.
pub fn import(
    conn: &mut DbConnection,
    input: impl std::io::Read,
    source: &str,
    progress: impl Fn(u64),
) -> Result<Imported, ImportError> {
    let rows = read_rows(input)?;
    let mut named: Vec<&GroupName> = rows.iter().flat_map(|row| row.groups.iter()).collect();
    named.sort();
    named.dedup();
    let names: Vec<&str> = named.iter().map(|name| name.as_str()).collect();
    let existing = crate::db::groups::find_by_names(conn, &names)?;
    let missing: Vec<&GroupName> =
        named.iter().copied().filter(|name| !existing.iter().any(|group| &group.name == *name)).collect();
    if missing.len() > MAX_NEW_GROUPS {
        return Err(ImportError::File(format!(
            "the file names {} groups that do not exist; one import may create at most {MAX_NEW_GROUPS} (create them \
             first with `portcullis group create`)",
            missing.len()
        )));
    }
    let mut bad = Vec::new();
    for chunk in rows.chunks(CHUNK) {
        let names: Vec<&str> = chunk.iter().map(|row| row.username.as_str()).collect();
        let skeletons: Vec<String> = chunk.iter().map(|row| row.email.skeleton()).collect();
        let looks: Vec<&str> = skeletons.iter().map(String::as_str).collect();
        let (taken_names, taken_looks) = users::taken(conn, &names, &looks)?;
        for row in chunk {
            if taken_names.iter().any(|name| name == row.username.as_str()) {
                bad.push(BadRow {
                    line: row.line,
                    message: format!("username {} already exists", row.username.as_str()),
                });
            }
            if taken_looks.contains(&row.email.skeleton()) {
                bad.push(BadRow {
                    line: row.line,
                    message: format!("email {} already exists (or one that looks the same)", row.email.as_str()),
                });
            }
        }
    }
    if !bad.is_empty() {
        bad.sort_by_key(|row| row.line);
        return Err(ImportError::BadRows(bad));
    }
    write_transaction(conn, |conn| {
        let mut written = 0;
        for chunk in rows.chunks(CHUNK) {
            let new_users: Vec<NewUser<'_>> = chunk
                .iter()
                .map(|row| NewUser {
                    username: &row.username,
                    email: &row.email,
                    display_name: &row.display_name,
                    password_hash: row.password_hash.as_deref().unwrap_or(NO_PASSWORD),
                    role: row.role,
                    // Without a hash the account has no password until an admin resets it.
                    must_change_password: row.password_hash.is_none(),
                })
                .collect();
            written += users::insert_many(conn, &new_users)?;
            progress(written as u64);
        }
        let now = users::now();
        let mut created_groups = Vec::new();
        for name in &missing {
            let fields = GroupFields { name, display_name: name.as_str(), description: "" };
            crate::db::groups::insert(conn, &fields, now).map_err(|error| match error {
                GroupWriteError::Database(error) => error,
                GroupWriteError::NameTaken => diesel::result::Error::RollbackTransaction,
            })?;
            created_groups.push(name.to_string());
        }
        // Memberships, group by group: the new users' ids by name, in chunks.
        let mut memberships = 0;
        let all_names: Vec<&str> = named.iter().map(|name| name.as_str()).collect();
        let groups = crate::db::groups::find_by_names(conn, &all_names)?;
        for group in &groups {
            let usernames: Vec<&str> =
                rows.iter().filter(|row| row.groups.contains(&group.name)).map(|row| row.username.as_str()).collect();
            for chunk in usernames.chunks(CHUNK) {
                let ids = users::ids_of_usernames(conn, chunk)?;
                memberships += crate::db::groups::add_members(conn, group.id, &ids, now)?.len();
            }
        }
        let mut details = format!("{written} users from {source}");
        if !created_groups.is_empty() {
            details.push_str(&format!("; created groups {}", created_groups.join(", ")));
        }
        if memberships > 0 {
            details.push_str(&format!("; {memberships} group memberships"));
        }
        audit::record(conn, &Actor::command_line(), Action::UserImport, None, &details)?;
        Ok(Imported { users: written, created_groups, memberships })
    })
}

/// The first rows of a report, for printing.
pub fn describe(bad: &[BadRow]) -> String {
    let mut lines: Vec<String> =
        bad.iter().take(MAX_REPORTED_ROWS).map(|row| format!("  line {}: {}", row.line, row.message)).collect();
    if bad.len() > MAX_REPORTED_ROWS {
        lines.push(format!("  … and {} more", bad.len() - MAX_REPORTED_ROWS));
    }
    lines.join("\n")
}
