//! CSV exports: users (in the format `user import` reads, plus their status) and the audit
//! trail, written a page at a time so a million rows take no more memory than a thousand.
//! A cell a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, `|`, their fullwidth forms,
//! tab, CR) is defused with a leading apostrophe (OWASP's CSV-injection advice); so is a cell
//! that already starts with one, so that `user import` can take exactly one off again
//! ([`restore_cell`]) and an export reads back unchanged.
use std::borrow::Cow;

use crate::db::DbConnection;
use crate::db::audit::{AuditEvent, AuditFilter};
use crate::db::user_search::{self, Cursor, Filters, PageRequest, SortKey};
use crate::db::users::User;

/// Rows read per query.
pub const CHUNK: i64 = 1000;

const USER_COLUMNS: [&str; 8] =
    ["username", "email", "display_name", "role", "status", "two_step", "created_at", "last_login_at"];

/// A chunk of the user export: the users, with their groups' names as one cell each
/// (`;`-separated, in name order: what `user import` reads back).
pub struct UserChunk {
    pub users: Vec<User>,
    pub groups: std::collections::HashMap<i64, String>,
}
const AUDIT_COLUMNS: [&str; 7] = ["occurred_at", "actor", "action", "action_words", "target", "client_ip", "details"];

/// What a spreadsheet may take as the start of a formula, and our own defusing apostrophe.
const DEFUSED_STARTS: [char; 12] = ['=', '+', '-', '@', '|', '\t', '\r', '＝', '＋', '－', '＠', '\''];

fn cell(value: &str) -> Cow<'_, str> {
    if value.starts_with(DEFUSED_STARTS) { Cow::Owned(format!("'{value}")) } else { Cow::Borrowed(value) }
}

/// A cell as it was before [`cell`] defused it: one apostrophe fewer where `cell` added one.
/// (A value written by hand as `'abc` stays as it is.)
pub fn restore_cell(value: &str) -> &str {
    match value.strip_prefix('\'') {
        Some(rest) if rest.starts_with(DEFUSED_STARTS) => rest,
        _ => value,
    }
}

fn time(at: Option<chrono::NaiveDateTime>) -> String {
    at.map(|at| at.format("%Y-%m-%dT%H:%M:%SZ").to_string()).unwrap_or_default()
}

fn finish(writer: csv::Writer<Vec<u8>>) -> anyhow::Result<Vec<u8>> {
    writer.into_inner().map_err(|error| anyhow::anyhow!("could not write CSV: {error}"))
}

/// The header line of a user export (`password_hash`, when asked for, then `groups`).
pub fn user_header(with_hashes: bool) -> anyhow::Result<Vec<u8>> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    let mut columns = USER_COLUMNS.to_vec();
    if with_hashes {
        columns.push("password_hash");
    }
    columns.push("groups");
    writer.write_record(&columns)?;
    finish(writer)
}

pub fn user_rows(chunk: &UserChunk, with_hashes: bool) -> anyhow::Result<Vec<u8>> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    for user in &chunk.users {
        let mut record = vec![
            cell(user.username.as_str()).into_owned(),
            cell(user.email.as_str()).into_owned(),
            cell(&user.display_name).into_owned(),
            user.role.as_str().to_owned(),
            if user.is_active { "active" } else { "disabled" }.to_owned(),
            if user.mfa_enabled { "on" } else { "off" }.to_owned(),
            time(Some(user.created_at)),
            time(user.last_login_at),
        ];
        if with_hashes {
            // An account without a password yet exports as one: `user import` reads an empty cell so.
            let hash = &user.password_hash;
            record.push(if hash == crate::auth::password::NO_PASSWORD { String::new() } else { hash.clone() });
        }
        record.push(chunk.groups.get(&user.id).cloned().unwrap_or_default());
        writer.write_record(&record)?;
    }
    finish(writer)
}

/// The next `CHUNK` users matching `filters` after `cursor`, by username; the cursor to go on
/// from (`None` when this was the last chunk).
pub fn user_chunk(
    conn: &mut DbConnection,
    filters: &Filters,
    cursor: Option<Cursor>,
) -> diesel::QueryResult<(UserChunk, Option<Cursor>)> {
    let request = PageRequest {
        filters: filters.clone(),
        sort: SortKey::Username,
        descending: false,
        cursor,
        backwards: false,
        size: CHUNK,
    };
    let plan = user_search::plan(conn, &request.filters)?;
    let page = user_search::page(conn, &request, &plan)?;
    let next = page.users.last().filter(|_| page.more).map(|user| Cursor::after(user, SortKey::Username));
    let ids: Vec<i64> = page.users.iter().map(|user| user.id).collect();
    let mut groups: std::collections::HashMap<i64, String> = std::collections::HashMap::new();
    for (user_id, name) in crate::db::groups::names_of_users(conn, &ids)? {
        let cell = groups.entry(user_id).or_default();
        if !cell.is_empty() {
            cell.push(';');
        }
        cell.push_str(&name);
    }
    Ok((UserChunk { users: page.users, groups }, next))
}

/// Who acted, in words: a user, the command line, or someone not signed in.
pub fn actor_words(event: &AuditEvent) -> String {
    match (&event.actor_username, event.client_ip.as_deref()) {
        (Some(name), _) => name.clone(),
        (None, Some("cli")) => "command line".to_owned(),
        (None, _) => "someone not signed in".to_owned(),
    }
}

pub fn audit_header() -> anyhow::Result<Vec<u8>> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(AUDIT_COLUMNS)?;
    finish(writer)
}

pub fn audit_rows(events: &[AuditEvent]) -> anyhow::Result<Vec<u8>> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    for event in events {
        let words = crate::db::audit::Action::from_code(&event.action).map_or("", crate::db::audit::Action::describe);
        writer.write_record([
            time(Some(event.occurred_at)),
            cell(&actor_words(event)).into_owned(),
            event.action.clone(),
            words.to_owned(),
            cell(event.target_username.as_deref().unwrap_or("")).into_owned(),
            event.client_ip.clone().unwrap_or_default(),
            cell(&event.details).into_owned(),
        ])?;
    }
    finish(writer)
}

/// The next `CHUNK` events matching `filter` (newest first); the filter for the chunk after.
pub fn audit_chunk(
    conn: &mut DbConnection,
    filter: &AuditFilter,
) -> diesel::QueryResult<(Vec<AuditEvent>, Option<AuditFilter>)> {
    let (events, more) = crate::db::audit::page(conn, filter, CHUNK)?;
    let next = events.last().filter(|_| more).map(|last| AuditFilter { before_id: Some(last.id), ..filter.clone() });
    Ok((events, next))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_defused_and_plain_text_is_left_alone() {
        assert_eq!(cell("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(cell("+1"), "'+1");
        assert_eq!(cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(cell("ann@example.com"), "ann@example.com");
        assert_eq!(cell("Ann-Marie"), "Ann-Marie");
        assert_eq!(cell("|cmd"), "'|cmd");
        assert_eq!(cell("＝1+1"), "'＝1+1", "fullwidth forms too");
        assert_eq!(cell("＠x"), "'＠x");
    }

    #[test]
    fn every_cell_reads_back_exactly_as_it_was() {
        for value in [
            "-bob@example.com",
            "=1+1",
            "'",
            "''",
            "'-already quoted",
            "'plain quote",
            "＋x",
            "\tTab",
            "Ann, \"the\" Marie",
            "\u{200f}شهد",
            "plain",
            "",
        ] {
            assert_eq!(restore_cell(&cell(value)), value, "{value:?}");
        }
        assert_eq!(restore_cell("'abc"), "'abc", "a hand-written apostrophe stays");
    }
}
