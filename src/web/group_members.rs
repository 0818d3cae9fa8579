//! The members of a group, as both its page for administrators (`admin/groups.rs`) and its
//! page for the group's managers (`groups.rs`) show and change them: a page of members
//! (keyset-paged, searchable like the user list), people found to add, and the forms that
//! add and remove people through `accounts` (which checks a manager's right again).
use std::collections::HashMap;

use actix_web::HttpResponse;
use serde::Deserialize;

use crate::accounts::{AccountError, MemberChanger};
use crate::db::groups::Group;
use crate::db::user_search::{self, Cursor, Filters, PageRequest, SortKey};
use crate::db::{self, users};
use crate::error::PageError;
use crate::web::context::Page;

const PAGE_SIZE: i64 = 50;
/// People offered when searching for someone to add.
const FOUND_SIZE: i64 = 20;
/// Users named or ticked in one form.
const MAX_AT_ONCE: usize = 500;
const MAX_SEARCH_CHARS: usize = 100;
/// Each ticked user arrives as `select-{id}=on` (a checkbox per row, no script needed).
const SELECT_PREFIX: &str = "select-";

/// A group's page, for its administrators and (without renaming, deleting and managers) for
/// its managers.
#[derive(askama::Template)]
#[template(path = "admin/groups/detail.html")]
pub(crate) struct GroupPage {
    pub layout: crate::web::layout::Layout,
    pub view: Membership,
    pub managers: Vec<(i64, String)>,
    /// Where the forms post: `/admin/groups/{id}` (admins) or `/groups/{id}` (managers).
    pub base: String,
    /// Admins see renaming, deleting and the managers; managers only the members.
    pub admin: bool,
}

/// Search text from an address, checked and bounded.
pub(crate) fn search_text(raw: &str, field: &str) -> Result<String, PageError> {
    crate::web::params::refuse_control_characters([(field, raw)])?;
    Ok(raw.trim().chars().take(MAX_SEARCH_CHARS).collect::<String>().to_lowercase())
}

#[derive(Deserialize, Default)]
pub(crate) struct GroupQuery {
    /// Searches the members.
    #[serde(default)]
    q: String,
    #[serde(default)]
    after: String,
    /// Searches everyone, to add.
    #[serde(default)]
    find: String,
}

pub(crate) struct Person {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    pub email: String,
}

impl From<&users::User> for Person {
    fn from(user: &users::User) -> Self {
        Self {
            id: user.id,
            username: user.username.to_string(),
            display_name: user.display_name.clone(),
            email: user.email.to_string(),
        }
    }
}

/// What the group's page (for admins) and a manager's page of it show.
pub(crate) struct Membership {
    pub group: Group,
    pub count: i64,
    pub members: Vec<Person>,
    pub next: Option<String>,
    /// People matching `find` (members among them marked by the page), to add.
    pub found: Vec<(Person, bool)>,
    pub q: String,
    pub find: String,
}

/// The group's members (a page of them, searched by `q`) and the people `find` finds.
pub(crate) async fn membership(
    page: &Page,
    group: Group,
    query: &GroupQuery,
    base: &str,
) -> Result<Membership, PageError> {
    let q = search_text(&query.q, "Search members")?;
    let find = search_text(&query.find, "Find people")?;
    let after = search_text(&query.after, "Page")?;
    let (group_id, members_q, find_q, from) = (group.id, q.clone(), find.clone(), after.clone());
    let (found_members, count, found) = db::run(&page.pool, move |conn| -> anyhow::Result<_> {
        let filters =
            Filters { search: Some(members_q).filter(|q| !q.is_empty()), group: Some(group_id), ..Default::default() };
        let request = PageRequest {
            filters,
            sort: SortKey::Username,
            descending: false,
            cursor: Some(from).filter(|from| !from.is_empty()).map(Cursor::Username),
            backwards: false,
            size: PAGE_SIZE,
        };
        let plan = user_search::plan(conn, &request.filters)?;
        let members = user_search::page(conn, &request, &plan)?;
        let count = db::groups::member_count(conn, group_id)?;
        let found = if find_q.is_empty() {
            Vec::new()
        } else {
            let filters = Filters { search: Some(find_q), ..Default::default() };
            let request = PageRequest {
                filters,
                sort: SortKey::Username,
                descending: false,
                cursor: None,
                backwards: false,
                size: FOUND_SIZE,
            };
            let plan = user_search::plan(conn, &request.filters)?;
            let users = user_search::page(conn, &request, &plan)?.users;
            let ids: Vec<i64> = users.iter().map(|user| user.id).collect();
            let members_among = db::groups::members_among(conn, group_id, &ids)?;
            users.iter().map(|user| (Person::from(user), members_among.contains(&user.id))).collect()
        };
        Ok((members, count, found))
    })
    .await?;
    let next = found_members.users.last().filter(|_| found_members.more).map(|last| {
        let params = [("q", q.as_str()), ("after", last.username.as_str())];
        format!("{base}?{}", serde_urlencoded::to_string(params).unwrap_or_default())
    });
    Ok(Membership {
        group,
        count,
        members: found_members.users.iter().map(Person::from).collect(),
        next,
        found,
        q,
        find,
    })
}

/// The people a member form names: ticked (`select-{id}`) and typed (`usernames`, separated
/// by spaces, commas or lines).
#[derive(Deserialize)]
pub(crate) struct PeopleForm {
    #[serde(default)]
    usernames: String,
    #[serde(flatten)]
    rest: HashMap<String, String>,
}

impl PeopleForm {
    /// The ids of the people named; names that match nobody, for the message.
    pub(crate) async fn people(&self, page: &Page) -> Result<(Vec<i64>, Vec<String>), PageError> {
        let mut ids: Vec<i64> = Vec::new();
        for key in self.rest.keys() {
            let Some(raw) = key.strip_prefix(SELECT_PREFIX) else { continue };
            ids.push(raw.parse().map_err(|_| PageError::BadRequest("The list of people is damaged.".into()))?);
        }
        let names: Vec<String> = self
            .usernames
            .split(|c: char| c.is_whitespace() || c == ',' || c == ';')
            .filter(|name| !name.is_empty())
            .map(str::to_lowercase)
            .collect();
        if ids.len() + names.len() > MAX_AT_ONCE {
            return Err(PageError::BadRequest(format!("Name at most {MAX_AT_ONCE} people at a time.")));
        }
        if names.iter().any(|name| name.chars().any(char::is_control) || name.len() > 320) {
            return Err(PageError::BadRequest("A username holds a control character or is far too long.".into()));
        }
        let (mut ids, unknown) = db::run(&page.pool, move |conn| -> anyhow::Result<_> {
            let mut unknown = Vec::new();
            for name in names {
                match users::find_by_login(conn, &name)? {
                    Some(user) => ids.push(user.id),
                    None => unknown.push(name),
                }
            }
            Ok((ids, unknown))
        })
        .await?;
        ids.sort_unstable();
        ids.dedup();
        Ok((ids, unknown))
    }
}

/// "Added 3 people." / "Removed alice." and the names that matched nobody.
pub(crate) fn member_message(verb: &str, changed: usize, unknown: &[String]) -> String {
    let mut message = match changed {
        0 => format!("Nobody was {verb}."),
        1 => format!("1 person {verb}."),
        n => format!("{n} people {verb}."),
    };
    if !unknown.is_empty() {
        let shown: Vec<&str> = unknown.iter().take(5).map(String::as_str).collect();
        message.push_str(&format!(" No one is called {}.", shown.join(", ")));
    }
    message
}

/// Adds or removes the people `form` names, as `by`; the redirect with what happened.
pub(crate) async fn change_members(
    page: &Page,
    group_id: i64,
    form: &PeopleForm,
    add: bool,
    by: MemberChanger,
    back: &str,
) -> Result<HttpResponse, PageError> {
    let (ids, unknown) = form.people(page).await?;
    if ids.is_empty() && unknown.is_empty() {
        return Ok(page.redirect(back, "Tick or type the people first."));
    }
    let changed = if add {
        page.accounts().add_members(page.actor(), group_id, ids, by).await
    } else {
        page.accounts().remove_members(page.actor(), group_id, ids, by).await
    };
    match changed {
        Ok(changed) => {
            Ok(page.redirect(back, &member_message(if add { "added" } else { "removed" }, changed.len(), &unknown)))
        }
        Err(AccountError::NotFound) => Err(PageError::NotFound),
        Err(error) => Err(error.into()),
    }
}
