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
    /// Members of this group (by id) only.
    pub group: Option<i64>,
    /// Set by `page` and `found` (callers leave it `false`): the group is large, so the list's
    /// order is walked and each row's membership looked up, instead of fetching the members.
    pub group_is_large: bool,
}

/// A group with more members than this is walked in the list's order (one index lookup per
/// row: at 1 in 10 users a page takes about 500); a smaller one is fetched and sorted.
const LARGE_GROUP: i64 = 2_000;

/// `filters` with `group_is_large` decided (at most `LARGE_GROUP` index entries read).
fn sized(conn: &mut DbConnection, filters: &Filters) -> QueryResult<Option<Filters>> {
    use crate::db::schema::group_members;
    let Some(group) = filters.group else { return Ok(None) };
    let some: Vec<i64> = group_members::table
        .filter(group_members::group_id.eq(group))
        .select(group_members::user_id)
        .limit(LARGE_GROUP + 1)
        .load(conn)?;
    let large = some.len() as i64 > LARGE_GROUP;
    Ok((large != filters.group_is_large).then(|| Filters { group_is_large: large, ..filters.clone() }))
}

/// Searches of three characters or more find any part of a field through a trigram index
/// (FTS5 on SQLite, pg_trgm on PostgreSQL). Few matches are fetched and sorted; many matches
/// (more than [`FEW`]) are found by walking the list's order and keeping those that contain
/// the text, which stops after one page because they are everywhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchPlan(Plan);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Plan {
    /// Under three characters: the start of the username, e-mail or display name.
    Prefix(String),
    /// SQLite: the users holding the text's two rarest trigrams (FTS5 `MATCH`), checked with
    /// `instr`.
    FewSqlite {
        folded: String,
        rare: String,
    },
    /// PostgreSQL: the users holding the rarest (sampled) trigrams, through the GIN index,
    /// checked with `strpos`.
    FewPostgres {
        folded: String,
        rare: Vec<String>,
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

/// The distinct three-character windows of `text`.
fn trigrams(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut grams: Vec<String> = chars.windows(3).map(|window| window.iter().collect()).collect();
    grams.sort();
    grams.dedup();
    grams
}

/// The sample's row that holds the number of users it was scaled to (no trigram is empty).
const TOTAL_KEY: &str = "";

/// Whether a search for text with these ranked trigrams likely matches more than [`FEW`]:
/// the two rarest trigrams' estimates, taken as independent, bound the matches.
fn likely_many(ranked: &[(i64, String)], total: i64) -> bool {
    match ranked {
        [] => false,
        [(only, _)] => *only > FEW,
        [(rarest, _), (next, _), ..] => (*rarest as f64) * (*next as f64) / total.max(1) as f64 > FEW as f64,
    }
}

/// The trigrams of `folded` an index can use, each with how many users hold it by the
/// sample (0 when the sample has not seen it), rarest first; and the users the sample stands for.
fn ranked_trigrams(conn: &mut DbConnection, folded: &str) -> QueryResult<(Vec<(i64, String)>, i64)> {
    use super::schema::search_trigram_sample as sample;
    // pg_trgm indexes letters and digits only; FTS5's trigrams are any characters, but the
    // sample counts the same kind on both.
    let grams: Vec<String> =
        trigrams(folded).into_iter().filter(|gram| gram.chars().all(char::is_alphanumeric)).collect();
    let mut keys = grams.clone();
    keys.push(TOTAL_KEY.to_owned());
    let sampled: Vec<(String, i64)> =
        sample::table.filter(sample::trigram.eq_any(&keys)).select((sample::trigram, sample::users)).load(conn)?;
    let estimate = |gram: &str| sampled.iter().find(|(seen, _)| seen == gram).map_or(0, |(_, users)| *users);
    let mut ranked: Vec<(i64, String)> = grams.iter().map(|gram| (estimate(gram), gram.clone())).collect();
    ranked.sort();
    Ok((ranked, estimate(TOTAL_KEY)))
}

/// SQLite: the two rarest trigrams pick the candidates through FTS5 (`MATCH`); `instr` makes
/// the answer exact. No usable trigram (such as "t_x"): the text's own trigrams do.
fn sqlite_plan(conn: &mut DbConnection, folded: String) -> QueryResult<Plan> {
    let (ranked, total) = ranked_trigrams(conn, &folded)?;
    if likely_many(&ranked, total) {
        return Ok(Plan::Many { folded, sqlite: true });
    }
    let phrase = |gram: &str| format!("\"{}\"", gram.replace('"', "\"\""));
    let rare = if ranked.is_empty() {
        phrase(&folded)
    } else {
        ranked.iter().take(2).map(|(_, gram)| phrase(gram)).collect::<Vec<_>>().join(" AND ")
    };
    Ok(Plan::FewSqlite { folded, rare })
}

/// PostgreSQL: the two rarest trigrams, each one posting list in the GIN index; `strpos`
/// makes the answer exact. No usable trigram: every user is checked (a scan).
fn postgres_plan(conn: &mut DbConnection, folded: String) -> QueryResult<Plan> {
    let (ranked, total) = ranked_trigrams(conn, &folded)?;
    if likely_many(&ranked, total) {
        return Ok(Plan::Many { folded, sqlite: false });
    }
    Ok(Plan::FewPostgres { folded, rare: ranked.into_iter().take(2).map(|(_, gram)| gram).collect() })
}

/// Users sampled to estimate how common each trigram is.
const TRIGRAM_SAMPLE: i64 = 20_000;

/// Re-estimates how many users hold each trigram, from a random sample of users, counted here
/// (housekeeping runs it hourly; about a second at a million users).
pub fn refresh_trigram_sample(conn: &mut DbConnection) -> QueryResult<()> {
    use super::schema::search_trigram_sample as sample;
    let total: i64 = users::table.count().get_result(conn)?;
    let texts: Vec<String> = match conn {
        DbConnection::Postgres(pg) => {
            let percent = (TRIGRAM_SAMPLE as f64 / total.max(1) as f64 * 100.0).clamp(0.01, 100.0);
            #[derive(QueryableByName)]
            struct Text {
                #[diesel(sql_type = diesel::sql_types::Text)]
                search_text: String,
            }
            diesel::sql_query(format!("SELECT search_text FROM users TABLESAMPLE BERNOULLI ({percent})"))
                .load::<Text>(pg)?
                .into_iter()
                .map(|row| row.search_text)
                .collect()
        }
        DbConnection::Sqlite(sqlite) => users::table
            .select(users::search_text)
            .order(diesel::dsl::sql::<diesel::sql_types::Integer>("random()"))
            .limit(TRIGRAM_SAMPLE)
            .load(sqlite)?,
    };
    let mut held: std::collections::HashMap<String, i64> = std::collections::HashMap::new();
    for text in &texts {
        let mut grams: Vec<String> =
            trigrams(text).into_iter().filter(|gram| gram.chars().all(char::is_alphanumeric)).collect();
        grams.dedup();
        for gram in grams {
            *held.entry(gram).or_default() += 1;
        }
    }
    let scale = total as f64 / texts.len().max(1) as f64;
    super::write_transaction(conn, |conn| {
        diesel::delete(sample::table).execute(conn)?;
        diesel::insert_into(sample::table)
            .values((sample::trigram.eq(TOTAL_KEY), sample::users.eq(total)))
            .execute(conn)?;
        for (gram, count) in &held {
            diesel::insert_into(sample::table)
                .values((sample::trigram.eq(gram), sample::users.eq((*count as f64 * scale).round() as i64)))
                .execute(conn)?;
        }
        Ok(())
    })
}

/// How the search of `filters` should run (`None` without a search).
pub fn plan(conn: &mut DbConnection, filters: &Filters) -> QueryResult<Option<SearchPlan>> {
    let Some(search) = filters.search.as_deref().map(str::trim).filter(|s| !s.is_empty()) else { return Ok(None) };
    let folded = crate::domain::search::fold(search);
    if folded.chars().count() < 3 {
        return Ok(Some(SearchPlan(Plan::Prefix(search.to_lowercase()))));
    }
    let plan = match conn {
        DbConnection::Sqlite(_) => sqlite_plan(conn, folded)?,
        DbConnection::Postgres(_) => postgres_plan(conn, folded)?,
    };
    Ok(Some(SearchPlan(plan)))
}

/// How many users the search (with the other filters) finds, when that is cheap to say.
pub fn found(conn: &mut DbConnection, filters: &Filters, plan: &Option<SearchPlan>) -> QueryResult<Option<Found>> {
    let resized = sized(conn, filters)?;
    let filters = resized.as_ref().unwrap_or(filters);
    match plan.as_ref().map(|plan| &plan.0) {
        Some(Plan::FewSqlite { .. } | Plan::FewPostgres { .. }) => {
            // The estimate can be off (a stale sample): more than few is said as such.
            let count: i64 = filtered(filters, plan).count().get_result(conn)?;
            Ok(Some(if count > FEW { Found::MoreThan(FEW) } else { Found::Exactly(count) }))
        }
        Some(Plan::Many { .. }) => Ok(Some(Found::MoreThan(FEW))),
        // A group's members: its index counts them (with the other filters) cheaply.
        None if filters.group.is_some() && !filters.group_is_large => {
            let count: i64 = filtered(filters, plan).count().get_result(conn)?;
            Ok(Some(if count > FEW { Found::MoreThan(FEW) } else { Found::Exactly(count) }))
        }
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

#[derive(Clone)]
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
    match plan.as_ref().map(|plan| &plan.0) {
        None => {}
        Some(Plan::Prefix(search)) => {
            let (low, high) = prefix_range(search);
            query = query.filter(
                users::username
                    .ge(low.clone())
                    .and(users::username.lt(high.clone()))
                    .or(users::email.ge(low.clone()).and(users::email.lt(high.clone())))
                    .or(users::search_name.ge(low).and(users::search_name.lt(high))),
            );
        }
        Some(Plan::FewSqlite { folded, rare }) => {
            query = query.filter(
                sql::<Bool>("users.id IN (SELECT rowid FROM users_fts WHERE users_fts MATCH ")
                    .bind::<Text, _>(rare.clone())
                    .sql(") AND instr(users.search_text, ")
                    .bind::<Text, _>(folded.clone())
                    .sql(") > 0"),
            );
        }
        Some(Plan::FewPostgres { folded, rare }) => {
            // Each single-trigram LIKE is one posting list in the GIN index; `strpos` is exact.
            for gram in rare {
                query = query.filter(sql::<Bool>("users.search_text LIKE ").bind::<Text, _>(contains_pattern(gram)));
            }
            query =
                query.filter(sql::<Bool>("strpos(users.search_text, ").bind::<Text, _>(folded.clone()).sql(") > 0"));
        }
        Some(Plan::Many { folded, sqlite }) => {
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
    match filters.group {
        // A large group: walk the list's order, one lookup in the members' primary key
        // (group_id, user_id) per row.
        Some(group) if filters.group_is_large => {
            query = query.filter(
                sql::<Bool>("EXISTS (SELECT 1 FROM group_members WHERE group_members.group_id = ")
                    .bind::<diesel::sql_types::BigInt, _>(group)
                    .sql(" AND group_members.user_id = users.id)"),
            );
        }
        // A small one: its members, fetched through the same index, then sorted.
        Some(group) => {
            query = query.filter(
                users::id.eq_any(
                    crate::db::schema::group_members::table
                        .filter(crate::db::schema::group_members::group_id.eq(group))
                        .select(crate::db::schema::group_members::user_id),
                ),
            );
        }
        None => {}
    }
    query = match filters.mfa {
        Some(true) => query.filter(users::mfa_enabled.eq(true)),
        Some(false) => query.filter(users::mfa_enabled.ne(true)),
        None => query,
    };
    query
}

/// One page of the list; `plan` is `plan(conn, &request.filters)` (made once per request: the
/// page and the count share it).
pub fn page(conn: &mut DbConnection, request: &PageRequest, plan: &Option<SearchPlan>) -> QueryResult<Page> {
    let resized = sized(conn, &request.filters)?.map(|filters| PageRequest { filters, ..request.clone() });
    let request = resized.as_ref().unwrap_or(request);
    // Reading backwards is reading forwards in the opposite order, then reversing.
    let ascending = request.descending == request.backwards;
    let limit = request.size + 1;
    let mut rows = match request.sort {
        SortKey::Username => by_username(conn, request, plan, ascending, limit)?,
        SortKey::Created => by_created(conn, request, plan, ascending, limit)?,
        SortKey::LastLogin => by_last_login(conn, request, plan, ascending, limit)?,
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
    let fetch_and_sort = matches!(
        plan.as_ref().map(|plan| &plan.0),
        Some(Plan::Prefix(_) | Plan::FewSqlite { .. } | Plan::FewPostgres { .. })
    );
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
