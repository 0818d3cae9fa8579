//! `GET /admin/users`: search, filter, sort and page through users.
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

use crate::db;
use crate::db::user_search::{self, Cursor, Filters, Found, PageRequest, SortKey};
use crate::db::users::User;
use crate::domain::Role;
use crate::error::PageError;
use crate::web::context::Page;
use crate::web::flash::Flash;
use crate::web::layout::{Layout, render};
use crate::web::time_words::{Clock, When};

pub(crate) const PAGE_SIZE: i64 = 50;
const MAX_SEARCH_CHARS: usize = 100;
/// Groups offered as choices of the group filter (beyond, the name is typed: `?group=NAME`).
const MAX_GROUP_CHOICES: i64 = 200;

#[derive(Deserialize, Default)]
pub(crate) struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    status: String,
    /// `on` or `off`: users with or without two-step sign-in.
    #[serde(default)]
    mfa: String,
    /// A group's name: its members only.
    #[serde(default)]
    group: String,
    #[serde(default)]
    sort: String,
    #[serde(default)]
    after: String,
    #[serde(default)]
    before: String,
}

pub(crate) struct Row {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    pub email: String,
    pub role: &'static str,
    pub active: bool,
    pub mfa: bool,
    pub created: When,
    pub last_login: When,
}

pub(crate) struct SortHeader {
    pub label: &'static str,
    pub href: String,
    /// "ascending", "descending" or "none", for `aria-sort`.
    pub state: &'static str,
}

#[derive(Template)]
#[template(path = "admin/users/list.html")]
struct UsersPage {
    layout: Layout,
    q: String,
    role: String,
    status: String,
    mfa: String,
    group: String,
    /// The groups to filter by (name, display name), for the filter's choices.
    groups: Vec<(String, String)>,
    sort: String,
    headers: Vec<SortHeader>,
    rows: Vec<Row>,
    previous: Option<String>,
    next: Option<String>,
    filtered: bool,
    /// "12 users found", "More than 10,000 users found", or "" when counting is not cheap.
    count: String,
    /// The CSV of every user the list's search and filters find.
    export: String,
    /// This very page of the list, to come back to after acting on the selected users.
    here: String,
}

fn parse_sort(raw: &str) -> (SortKey, bool) {
    let (key, descending) = match raw.strip_prefix('-') {
        Some(key) => (key, true),
        None => (raw, false),
    };
    match key {
        "created" => (SortKey::Created, descending),
        "last_login" => (SortKey::LastLogin, descending),
        _ => (SortKey::Username, descending),
    }
}

fn sort_name(key: SortKey) -> &'static str {
    match key {
        SortKey::Username => "username",
        SortKey::Created => "created",
        SortKey::LastLogin => "last_login",
    }
}

/// Cursors travel in the URL, opaque to people but not secret.
fn encode_cursor(cursor: &Cursor) -> String {
    let raw = match cursor {
        Cursor::Username(name) => format!("u\u{1f}{name}"),
        Cursor::Created(at, id) => format!("c\u{1f}{}\u{1f}{id}", at.and_utc().timestamp_micros()),
        Cursor::LastLogin(at, id) => {
            format!("l\u{1f}{}\u{1f}{id}", at.map(|at| at.and_utc().timestamp_micros().to_string()).unwrap_or_default())
        }
    };
    URL_SAFE_NO_PAD.encode(raw)
}

fn decode_cursor(raw: &str, sort: SortKey) -> Result<Cursor, PageError> {
    let invalid = || PageError::BadRequest("The page link is damaged. Go back to the first page of the list.".into());
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(raw).map_err(|_| invalid())?).map_err(|_| invalid())?;
    let parts: Vec<&str> = text.split('\u{1f}').collect();
    let micros = |s: &str| {
        s.parse::<i64>()
            .ok()
            .and_then(chrono::DateTime::from_timestamp_micros)
            .map(|at| at.naive_utc())
            .ok_or_else(invalid)
    };
    let id = |s: &str| s.parse::<i64>().map_err(|_| invalid());
    match (sort, parts.as_slice()) {
        (SortKey::Username, ["u", name]) => Ok(Cursor::Username((*name).to_owned())),
        (SortKey::Created, ["c", at, row]) => Ok(Cursor::Created(micros(at)?, id(row)?)),
        (SortKey::LastLogin, ["l", "", row]) => Ok(Cursor::LastLogin(None, id(row)?)),
        (SortKey::LastLogin, ["l", at, row]) => Ok(Cursor::LastLogin(Some(micros(at)?), id(row)?)),
        _ => Err(invalid()),
    }
}

/// The search and filters of the current list, for links that keep them.
fn filter_params(query: &ListQuery) -> Vec<(&'static str, String)> {
    [("q", &query.q), ("role", &query.role), ("status", &query.status), ("mfa", &query.mfa), ("group", &query.group)]
        .into_iter()
        .filter(|(_, value)| !value.is_empty())
        .map(|(key, value)| (key, value.clone()))
        .collect()
}

fn row(user: &User, clock: &Clock) -> Row {
    Row {
        id: user.id,
        username: user.username.to_string(),
        display_name: user.display_name.clone(),
        email: user.email.to_string(),
        role: user.role.as_str(),
        active: user.is_active,
        mfa: user.mfa_enabled,
        created: clock.ago(user.created_at),
        last_login: clock.ago_or_never(user.last_login_at),
    }
}

/// The search and filters the query asks for (`group`: the id of the group it names).
fn filters_of(query: &ListQuery, group: Option<i64>) -> Result<Filters, PageError> {
    crate::web::params::refuse_control_characters([
        ("Search", query.q.as_str()),
        ("Role", &query.role),
        ("Status", &query.status),
        ("Two-step", &query.mfa),
        ("Group", &query.group),
    ])?;
    let search: String = query.q.trim().chars().take(MAX_SEARCH_CHARS).collect::<String>().to_lowercase();
    Ok(Filters {
        search: (!search.is_empty()).then_some(search),
        role: Role::parse(&query.role).ok(),
        active: match query.status.as_str() {
            "active" => Some(true),
            "disabled" => Some(false),
            _ => None,
        },
        mfa: match query.mfa.as_str() {
            "on" => Some(true),
            "off" => Some(false),
            _ => None,
        },
        group,
        group_is_large: false,
    })
}

/// The id of the group the query names; a 400 that says so for a group that does not exist.
async fn group_filter(page: &Page, query: &ListQuery) -> Result<Option<i64>, PageError> {
    if query.group.is_empty() {
        return Ok(None);
    }
    let name = crate::domain::GroupName::parse(&query.group)
        .map_err(|_| PageError::BadRequest(format!("There is no group named {:?}.", query.group)))?;
    let shown = name.to_string();
    let found =
        db::run(&page.pool, move |conn| -> anyhow::Result<_> { Ok(db::groups::find_by_name(conn, &name)?) }).await?;
    found
        .map(|group| Some(group.id))
        .ok_or_else(|| PageError::BadRequest(format!("There is no group named {shown:?}.")))
}

/// `GET /admin/users.csv`: the users the list shows (its search and filters, every page), as
/// CSV in the format `portcullis user import` reads, streamed a thousand rows at a time.
pub(crate) async fn export(page: Page, query: web::Query<ListQuery>) -> Result<HttpResponse, PageError> {
    let group = group_filter(&page, &query).await?;
    let filters = filters_of(&query, group)?;
    let header = crate::export::user_header(false)?;
    let pool = page.pool.clone();
    // `None`: done; `Some(None)`: the first chunk; `Some(Some(cursor))`: the chunk after it.
    let chunks = futures_util::stream::unfold(Some(None), move |state: Option<Option<Cursor>>| {
        let (pool, filters) = (pool.clone(), filters.clone());
        async move {
            let cursor = state?;
            let chunk = db::run(&pool, move |conn| -> anyhow::Result<_> {
                let (users, next) = crate::export::user_chunk(conn, &filters, cursor)?;
                Ok((crate::export::user_rows(&users, false)?, next))
            })
            .await;
            Some(match chunk {
                Ok((bytes, next)) => (Ok(web::Bytes::from(bytes)), next.map(Some)),
                Err(error) => (Err(PageError::Unexpected(error)), None),
            })
        }
    });
    Ok(crate::web::downloads::csv_download("users", header, chunks))
}

pub(crate) async fn list(page: Page, query: web::Query<ListQuery>, flash: Flash) -> Result<HttpResponse, PageError> {
    let query = query.into_inner();
    let (sort, descending) = parse_sort(&query.sort);
    let group = group_filter(&page, &query).await?;
    let filters = filters_of(&query, group)?;
    let (cursor, backwards) = match (query.after.is_empty(), query.before.is_empty()) {
        (false, _) => (Some(decode_cursor(&query.after, sort)?), false),
        (true, false) => (Some(decode_cursor(&query.before, sort)?), true),
        (true, true) => (None, false),
    };
    let had_cursor = cursor.is_some();
    let request = PageRequest { filters: filters.clone(), sort, descending, cursor, backwards, size: PAGE_SIZE };
    let counted = filters.clone();
    let (found, count, groups) = db::run(&page.pool, move |conn| -> anyhow::Result<_> {
        let plan = user_search::plan(conn, &request.filters)?;
        let groups = db::groups::names(conn, MAX_GROUP_CHOICES)?;
        Ok((user_search::page(conn, &request, &plan)?, user_search::found(conn, &counted, &plan)?, groups))
    })
    .await?;

    let sort_param = format!("{}{}", if descending { "-" } else { "" }, sort_name(sort));
    let link = |extra: (&str, String)| {
        let mut params = filter_params(&query);
        params.push(("sort", sort_param.clone()));
        params.push(extra);
        format!("/admin/users?{}", serde_urlencoded::to_string(&params).unwrap_or_default())
    };
    let (has_previous, has_next) = if backwards { (found.more, true) } else { (had_cursor, found.more) };
    let previous = found
        .users
        .first()
        .filter(|_| has_previous)
        .map(|user| link(("before", encode_cursor(&Cursor::after(user, sort)))));
    let next =
        found.users.last().filter(|_| has_next).map(|user| link(("after", encode_cursor(&Cursor::after(user, sort)))));

    let headers =
        [("Username", SortKey::Username), ("Created", SortKey::Created), ("Last sign-in", SortKey::LastLogin)]
            .into_iter()
            .map(|(label, key)| {
                let current = key == sort;
                // Clicking the current column flips it; another column starts in its natural order.
                let next_descending = if current { !descending } else { key != SortKey::Username };
                let mut params = filter_params(&query);
                params.push(("sort", format!("{}{}", if next_descending { "-" } else { "" }, sort_name(key))));
                SortHeader {
                    label,
                    href: format!("/admin/users?{}", serde_urlencoded::to_string(&params).unwrap_or_default()),
                    state: match (current, descending) {
                        (false, _) => "none",
                        (true, false) => "ascending",
                        (true, true) => "descending",
                    },
                }
            })
            .collect();

    let clock = page.clock();
    let here = {
        let mut params = filter_params(&query);
        params.push(("sort", sort_param.clone()));
        params.extend(
            [("after", &query.after), ("before", &query.before)]
                .into_iter()
                .filter(|(_, value)| !value.is_empty())
                .map(|(key, value)| (key, value.clone())),
        );
        format!("/admin/users?{}", serde_urlencoded::to_string(&params).unwrap_or_default())
    };
    let view = UsersPage {
        here,
        export: format!("/admin/users.csv?{}", serde_urlencoded::to_string(filter_params(&query)).unwrap_or_default()),
        layout: page.layout().with_flash(&flash),
        filtered: filters.search.is_some()
            || filters.role.is_some()
            || filters.active.is_some()
            || filters.mfa.is_some()
            || filters.group.is_some(),
        q: query.q.clone(),
        role: query.role.clone(),
        status: query.status.clone(),
        mfa: query.mfa.clone(),
        group: query.group.clone(),
        groups,
        sort: sort_param,
        headers,
        rows: found.users.iter().map(|user| row(user, &clock)).collect(),
        count: match count {
            Some(Found::Exactly(1)) => "1 user found".to_owned(),
            Some(Found::Exactly(n)) => format!("{n} users found"),
            Some(Found::MoreThan(_)) => "More than 10,000 users found".to_owned(),
            None => String::new(),
        },
        previous,
        next,
    };
    Ok(flash.finish(render(StatusCode::OK, &view)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_damaged_ones_are_a_400() {
        let at = chrono::DateTime::from_timestamp_micros(1_795_000_000_123_456).unwrap().naive_utc();
        for (cursor, sort) in [
            (Cursor::Username("alice".into()), SortKey::Username),
            (Cursor::Created(at, 7), SortKey::Created),
            (Cursor::LastLogin(Some(at), 8), SortKey::LastLogin),
            (Cursor::LastLogin(None, 9), SortKey::LastLogin),
        ] {
            assert_eq!(decode_cursor(&encode_cursor(&cursor), sort).unwrap(), cursor);
        }
        assert!(decode_cursor("%%%", SortKey::Username).is_err());
        assert!(decode_cursor(&encode_cursor(&Cursor::Username("a".into())), SortKey::Created).is_err());
    }
}
