//! The admin user list: search, filters, sort, and keyset pagination. Every page is an index
//! range scan from a cursor, so page 20,000 costs what page 1 costs.
use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConnection;
use super::connection::MultiBackend;
use super::schema::users;
use super::users::User;
use crate::domain::Role;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Username,
    Created,
    LastLogin,
}

#[derive(Debug, Clone, Default)]
pub struct Filters {
    /// Matches any part of the username, the email or the display name, whatever the case
    /// and accents (two characters or fewer: the start of one of them).
    pub search: Option<String>,
    pub role: Option<Role>,
    pub active: Option<bool>,
    /// With (or without) two-step sign-in.
    pub mfa: Option<bool>,
}

/// Searches of three characters or more find any part of a field through a trigram index
/// (FTS5 on SQLite, pg_trgm on PostgreSQL). Few matches are fetched and sorted; many matches
/// (more than [`FEW`]) are found by walking the list's order and keeping those that contain
/// the text, which stops after one page because they are everywhere.
#[derive(Debug, Clone, PartialEq, Eq)]
enum SearchPlan {
    /// Under three characters: the start of the username, e-mail or display name.
    Prefix(String),
    Few {
        folded: String,
        sqlite: bool,
    },
    Many {
        folded: String,
        sqlite: bool,
    },
}

/// At most this many matches count as few (and are counted exactly).
pub const FEW: i64 = 10_000;

/// How many users a search found: exactly, or more than [`FEW`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    Exactly(i64),
    MoreThan(i64),
}

/// `text` as a LIKE pattern that matches it anywhere (`%`, `_` and `\` escaped with `\`).
fn contains_pattern(text: &str) -> String {
    let mut pattern = String::from("%");
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// How many users contain `folded`, counted up to `FEW + 1` through the trigram index. On
/// SQLite the FTS5 LIKE treats `%` and `_` as wildcards: a superset, made exact by `instr`.
fn candidates(conn: &mut DbConnection, folded: &str) -> QueryResult<i64> {
    use diesel::sql_types::Text;
    let limit = FEW + 1;
    let count = match conn {
        DbConnection::Sqlite(sqlite) => diesel::sql_query(format!(
            "SELECT count(*) AS n FROM (SELECT rowid FROM users_fts WHERE search_text LIKE ? LIMIT {limit})"
        ))
        .bind::<Text, _>(format!("%{folded}%"))
        .get_result::<Count>(sqlite)?,
        DbConnection::Postgres(pg) => diesel::sql_query(format!(
            "SELECT count(*) AS n FROM (SELECT 1 FROM users WHERE search_text LIKE $1 ESCAPE '\\' LIMIT {limit}) found"
        ))
        .bind::<Text, _>(contains_pattern(folded))
        .get_result::<Count>(pg)?,
    };
    Ok(count.n)
}

fn plan(conn: &mut DbConnection, filters: &Filters) -> QueryResult<Option<SearchPlan>> {
    let Some(search) = filters.search.as_deref().map(str::trim).filter(|s| !s.is_empty()) else { return Ok(None) };
    let folded = crate::domain::search::fold(search);
    if folded.chars().count() < 3 {
        return Ok(Some(SearchPlan::Prefix(search.to_lowercase())));
    }
    let sqlite = matches!(conn, DbConnection::Sqlite(_));
    Ok(Some(if candidates(conn, &folded)? > FEW {
        SearchPlan::Many { folded, sqlite }
    } else {
        SearchPlan::Few { folded, sqlite }
    }))
}

/// How many users the search (with the other filters) finds, when that is cheap to say.
pub fn found(conn: &mut DbConnection, filters: &Filters) -> QueryResult<Option<Found>> {
    let plan = plan(conn, filters)?;
    match &plan {
        Some(SearchPlan::Few { .. }) => Ok(Some(Found::Exactly(filtered(filters, &plan).count().get_result(conn)?))),
        Some(SearchPlan::Many { .. }) => Ok(Some(Found::MoreThan(FEW))),
        _ => Ok(None),
    }
}

/// The position just past a row, in the current sort order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cursor {
    Username(String),
    Created(NaiveDateTime, i64),
    /// `None`: the row has never logged in.
    LastLogin(Option<NaiveDateTime>, i64),
}

impl Cursor {
    pub fn after(user: &User, sort: SortKey) -> Self {
        match sort {
            SortKey::Username => Self::Username(user.username.to_string()),
            SortKey::Created => Self::Created(user.created_at, user.id),
            SortKey::LastLogin => Self::LastLogin(user.last_login_at, user.id),
        }
    }
}

pub struct PageRequest {
    pub filters: Filters,
    pub sort: SortKey,
    pub descending: bool,
    /// Rows after this cursor (or, with `backwards`, before it).
    pub cursor: Option<Cursor>,
    pub backwards: bool,
    pub size: i64,
}

pub struct Page {
    pub users: Vec<User>,
    /// Whether more rows lie beyond this page in the direction it was read.
    pub more: bool,
}

type BoxedUsers<'a> = users::BoxedQuery<'a, MultiBackend>;

fn prefix_range(search: &str) -> (String, String) {
    // A byte-order range is a prefix match that any B-tree serves, on both backends.
    (search.to_owned(), format!("{search}\u{10FFFF}"))
}

fn filtered(filters: &Filters, plan: &Option<SearchPlan>) -> BoxedUsers<'static> {
    use diesel::dsl::sql;
    use diesel::sql_types::{Bool, Text};
    let mut query = users::table.into_boxed();
    match plan {
        None => {}
        Some(SearchPlan::Prefix(search)) => {
            let (low, high) = prefix_range(search);
            query = query.filter(
                users::username
                    .ge(low.clone())
                    .and(users::username.lt(high.clone()))
                    .or(users::email.ge(low.clone()).and(users::email.lt(high.clone())))
                    .or(users::search_name.ge(low).and(users::search_name.lt(high))),
            );
        }
        Some(SearchPlan::Few { folded, sqlite: true }) => {
            query = query.filter(
                sql::<Bool>("users.id IN (SELECT rowid FROM users_fts WHERE search_text LIKE ")
                    .bind::<Text, _>(format!("%{folded}%"))
                    .sql(") AND instr(users.search_text, ")
                    .bind::<Text, _>(folded.clone())
                    .sql(") > 0"),
            );
        }
        Some(SearchPlan::Few { folded, sqlite: false }) => {
            query = query.filter(
                sql::<Bool>("users.search_text LIKE ").bind::<Text, _>(contains_pattern(folded)).sql(" ESCAPE '\\'"),
            );
        }
        Some(SearchPlan::Many { folded, sqlite }) => {
            let function = if *sqlite { "instr(users.search_text, " } else { "strpos(users.search_text, " };
            query = query.filter(sql::<Bool>(function).bind::<Text, _>(folded.clone()).sql(") > 0"));
        }
    }
    // Administrators and disabled accounts are few: an index on them is the fast way in.
    // Plain users and active accounts are nearly everyone: written as `<>` so the planner
    // walks the sort order's index instead of sorting most of the table (measured: 180 ms
    // → 1 ms at 100k users on SQLite).
    query = match filters.role {
        Some(Role::Admin) => query.filter(users::role.eq(Role::Admin.as_str())),
        Some(Role::User) => query.filter(users::role.ne(Role::Admin.as_str())),
        None => query,
    };
    query = match filters.active {
        Some(false) => query.filter(users::is_active.eq(false)),
        Some(true) => query.filter(users::is_active.ne(false)),
        None => query,
    };
    query = match filters.mfa {
        Some(true) => query.filter(users::mfa_enabled.eq(true)),
        Some(false) => query.filter(users::mfa_enabled.ne(true)),
        None => query,
    };
    query
}

pub fn page(conn: &mut DbConnection, request: &PageRequest) -> QueryResult<Page> {
    let plan = plan(conn, &request.filters)?;
    // Reading backwards is reading forwards in the opposite order, then reversing.
    let ascending = request.descending == request.backwards;
    let limit = request.size + 1;
    let mut rows = match request.sort {
        SortKey::Username => by_username(conn, request, &plan, ascending, limit)?,
        SortKey::Created => by_created(conn, request, &plan, ascending, limit)?,
        SortKey::LastLogin => by_last_login(conn, request, &plan, ascending, limit)?,
    };
    let more = rows.len() as i64 > request.size;
    rows.truncate(usize::try_from(request.size).unwrap_or(0));
    if request.backwards {
        rows.reverse();
    }
    Ok(Page { users: rows, more })
}

fn by_username(
    conn: &mut DbConnection,
    request: &PageRequest,
    plan: &Option<SearchPlan>,
    ascending: bool,
    limit: i64,
) -> QueryResult<Vec<User>> {
    let mut query = filtered(&request.filters, plan);
    if let Some(Cursor::Username(name)) = &request.cursor {
        query = if ascending {
            query.filter(users::username.gt(name.clone()))
        } else {
            query.filter(users::username.lt(name.clone()))
        };
    }
    // With a search, ordering by an expression stops the planner from walking the whole
    // username index hoping to meet matches early (they may sit deep inside it): it fetches
    // the matches through the prefix ranges and sorts only those. A search then costs what
    // its number of matches costs, wherever they are.
    let fetch_and_sort = matches!(plan, Some(SearchPlan::Prefix(_) | SearchPlan::Few { .. }));
    query = match (fetch_and_sort, ascending) {
        (true, true) => query.order(users::username.concat("").asc()),
        (true, false) => query.order(users::username.concat("").desc()),
        (false, true) => query.order(users::username.asc()),
        (false, false) => query.order(users::username.desc()),
    };
    query.limit(limit).load(conn)
}

fn by_created(
    conn: &mut DbConnection,
    request: &PageRequest,
    plan: &Option<SearchPlan>,
    ascending: bool,
    limit: i64,
) -> QueryResult<Vec<User>> {
    let mut query = filtered(&request.filters, plan);
    if let Some(Cursor::Created(at, id)) = &request.cursor {
        // `at >= x AND (at > x OR id > y)`: the first half is an index range on both backends.
        query = if ascending {
            query.filter(users::created_at.ge(*at)).filter(users::created_at.gt(*at).or(users::id.gt(*id)))
        } else {
            query.filter(users::created_at.le(*at)).filter(users::created_at.lt(*at).or(users::id.lt(*id)))
        };
    }
    query = if ascending {
        query.order((users::created_at.asc(), users::id.asc()))
    } else {
        query.order((users::created_at.desc(), users::id.desc()))
    };
    query.limit(limit).load(conn)
}

/// Users who logged in, by time, and users who never did, by id, as two index ranges:
/// descending lists recent logins first and "never" last; ascending is the exact reverse.
fn by_last_login(
    conn: &mut DbConnection,
    request: &PageRequest,
    plan: &Option<SearchPlan>,
    ascending: bool,
    limit: i64,
) -> QueryResult<Vec<User>> {
    let (mut rows, in_logged_segment) = match &request.cursor {
        None => (Vec::new(), !ascending),
        Some(Cursor::LastLogin(Some(_), _)) => (Vec::new(), true),
        Some(Cursor::LastLogin(None, _)) => (Vec::new(), false),
        Some(_) => (Vec::new(), !ascending),
    };
    let cursor = match &request.cursor {
        Some(Cursor::LastLogin(at, id)) => Some((*at, *id)),
        _ => None,
    };
    if in_logged_segment {
        rows.extend(logged_in(
            conn,
            (&request.filters, plan),
            cursor.and_then(|(at, id)| at.map(|at| (at, id))),
            ascending,
            limit,
        )?);
        if !ascending && (rows.len() as i64) < limit {
            rows.extend(never_logged_in(conn, (&request.filters, plan), None, false, limit - rows.len() as i64)?);
        }
    } else {
        let after_id = cursor.filter(|(at, _)| at.is_none()).map(|(_, id)| id);
        rows.extend(never_logged_in(conn, (&request.filters, plan), after_id, ascending, limit)?);
        if ascending && (rows.len() as i64) < limit {
            rows.extend(logged_in(conn, (&request.filters, plan), None, true, limit - rows.len() as i64)?);
        }
    }
    Ok(rows)
}

fn logged_in(
    conn: &mut DbConnection,
    (filters, plan): (&Filters, &Option<SearchPlan>),
    after: Option<(NaiveDateTime, i64)>,
    ascending: bool,
    limit: i64,
) -> QueryResult<Vec<User>> {
    let mut query = filtered(filters, plan).filter(users::last_login_at.is_not_null());
    if let Some((at, id)) = after {
        query = if ascending {
            query.filter(users::last_login_at.ge(at)).filter(users::last_login_at.gt(at).or(users::id.gt(id)))
        } else {
            query.filter(users::last_login_at.le(at)).filter(users::last_login_at.lt(at).or(users::id.lt(id)))
        };
    }
    query = if ascending {
        query.order((users::last_login_at.asc(), users::id.asc()))
    } else {
        query.order((users::last_login_at.desc(), users::id.desc()))
    };
    query.limit(limit).load(conn)
}

fn never_logged_in(
    conn: &mut DbConnection,
    (filters, plan): (&Filters, &Option<SearchPlan>),
    after_id: Option<i64>,
    ascending: bool,
    limit: i64,
) -> QueryResult<Vec<User>> {
    let mut query = filtered(filters, plan).filter(users::last_login_at.is_null());
    if let Some(id) = after_id {
        query = if ascending { query.filter(users::id.gt(id)) } else { query.filter(users::id.lt(id)) };
    }
    query = if ascending { query.order(users::id.asc()) } else { query.order(users::id.desc()) };
    query.limit(limit).load(conn)
}
