//! `/admin/groups/**`: the groups (with member counts and search), adding one, a group's page
//! (its members, keyset-paged and searchable like the user list; adding people by searching
//! for them; its managers), renaming, and deleting with a confirmation that says how many
//! members lose it. Every change is one call into `accounts`.
use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::web;
use askama::Template;
use serde::Deserialize;

use crate::accounts::{AccountError, FieldErrors, GroupInput, MemberChanger, ValidGroup};
use crate::db::groups::{Group, GroupSummary};
use crate::db::{self, users};
use crate::error::PageError;
use crate::web::context::Page;
use crate::web::flash::Flash;
use crate::web::form::{CsrfForm, NoFields};
use crate::web::group_members::{GroupPage, GroupQuery, PeopleForm, change_members, membership, search_text};
use crate::web::layout::{Layout, render};
use crate::web::params::GroupId;

const PAGE_SIZE: i64 = 50;

pub(crate) fn group_page(GroupId(id): GroupId) -> String {
    format!("/admin/groups/{id}")
}

#[derive(Deserialize, Default)]
pub(crate) struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    after: String,
}

#[derive(Template)]
#[template(path = "admin/groups/list.html")]
struct GroupsPage {
    layout: Layout,
    q: String,
    groups: Vec<GroupSummary>,
    next: Option<String>,
}

/// `GET /admin/groups`.
pub(crate) async fn list(page: Page, query: web::Query<ListQuery>, flash: Flash) -> Result<HttpResponse, PageError> {
    let q = search_text(&query.q, "Search")?;
    let after = search_text(&query.after, "Page")?;
    let (search, from) = (q.clone(), after.clone());
    let mut groups = db::run(&page.pool, move |conn| -> anyhow::Result<_> {
        let search = Some(search.as_str()).filter(|search| !search.is_empty());
        Ok(db::groups::list(conn, search, Some(from.as_str()).filter(|from| !from.is_empty()), PAGE_SIZE + 1)?)
    })
    .await?;
    let more = groups.len() as i64 > PAGE_SIZE;
    groups.truncate(PAGE_SIZE as usize);
    let next = groups.last().filter(|_| more).map(|last| {
        let params = [("q", q.as_str()), ("after", last.group.name.as_str())];
        format!("/admin/groups?{}", serde_urlencoded::to_string(params).unwrap_or_default())
    });
    let view = GroupsPage { layout: page.layout().with_flash(&flash), q, groups, next };
    Ok(flash.finish(render(StatusCode::OK, &view)?))
}

#[derive(Deserialize, Default)]
pub(crate) struct GroupForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    description: String,
}

impl GroupForm {
    fn input(&self) -> GroupInput<'_> {
        GroupInput { name: &self.name, display_name: &self.display_name, description: &self.description }
    }
}

#[derive(Template)]
#[template(path = "admin/groups/form.html")]
struct GroupFormPage {
    layout: Layout,
    /// `None`: a new group.
    group: Option<Group>,
    form: GroupForm,
    errors: FieldErrors,
}

fn form_page(
    page: &Page,
    group: Option<Group>,
    form: GroupForm,
    errors: FieldErrors,
) -> Result<HttpResponse, PageError> {
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    render(status, &GroupFormPage { layout: page.layout(), group, form, errors })
}

/// The form again with the service's refusal on its field.
fn refused(page: &Page, group: Option<Group>, form: GroupForm, error: AccountError) -> Result<HttpResponse, PageError> {
    let mut errors = FieldErrors::default();
    match error {
        AccountError::Field((field, message)) => errors.add(field, message),
        error => return Err(error.into()),
    }
    form_page(page, group, form, errors)
}

/// `GET /admin/groups/new`.
pub(crate) async fn new_form(page: Page) -> Result<HttpResponse, PageError> {
    form_page(&page, None, GroupForm::default(), FieldErrors::default())
}

/// `POST /admin/groups/new`.
pub(crate) async fn create(page: Page, form: CsrfForm<GroupForm>) -> Result<HttpResponse, PageError> {
    let form = form.0;
    let valid = match ValidGroup::parse(&form.input()) {
        Ok(valid) => valid,
        Err(errors) => return form_page(&page, None, form, errors),
    };
    match page.accounts().create_group(page.actor(), valid).await {
        Ok(group) => Ok(page.redirect(&group_page(GroupId(group.id)), &format!("Group {} created.", group.name))),
        Err(error) => refused(&page, None, form, error),
    }
}

async fn load_group(page: &Page, GroupId(id): GroupId) -> Result<Group, PageError> {
    db::run(&page.pool, move |conn| -> anyhow::Result<_> { Ok(db::groups::find(conn, id)?) })
        .await?
        .ok_or(PageError::NotFound)
}

/// `GET /admin/groups/{group}/edit`.
pub(crate) async fn edit_form(page: Page, id: GroupId) -> Result<HttpResponse, PageError> {
    let group = load_group(&page, id).await?;
    let form = GroupForm {
        name: group.name.to_string(),
        display_name: group.display_name.clone(),
        description: group.description.clone(),
    };
    form_page(&page, Some(group), form, FieldErrors::default())
}

/// `POST /admin/groups/{group}/edit`.
pub(crate) async fn update(page: Page, id: GroupId, form: CsrfForm<GroupForm>) -> Result<HttpResponse, PageError> {
    let group = load_group(&page, id).await?;
    let form = form.0;
    let valid = match ValidGroup::parse(&form.input()) {
        Ok(valid) => valid,
        Err(errors) => return form_page(&page, Some(group), form, errors),
    };
    match page.accounts().update_group(page.actor(), id.0, valid).await {
        Ok(saved) => Ok(page.redirect(&group_page(id), &format!("Group {} saved.", saved.name))),
        Err(error) => refused(&page, Some(group), form, error),
    }
}

#[derive(Template)]
#[template(path = "admin/groups/delete.html")]
struct DeletePage {
    layout: Layout,
    group: Group,
    members: i64,
}

/// `GET /admin/groups/{group}/delete`: what deleting it means, with the button.
pub(crate) async fn confirm_delete(page: Page, id: GroupId) -> Result<HttpResponse, PageError> {
    let group = load_group(&page, id).await?;
    let members =
        db::run(&page.pool, move |conn| -> anyhow::Result<_> { Ok(db::groups::member_count(conn, id.0)?) }).await?;
    render(StatusCode::OK, &DeletePage { layout: page.layout(), group, members })
}

/// `POST /admin/groups/{group}/delete`.
pub(crate) async fn delete(page: Page, id: GroupId, _form: CsrfForm<NoFields>) -> Result<HttpResponse, PageError> {
    match page.accounts().delete_group(page.actor(), id.0).await {
        Ok((group, members)) => {
            let message = format!(
                "Group {} deleted; {members} member{} lost it.",
                group.name,
                if members == 1 { "" } else { "s" }
            );
            Ok(page.redirect("/admin/groups", &message))
        }
        Err(AccountError::NotFound) => Ok(page.redirect("/admin/groups", "That group no longer exists.")),
        Err(error) => Err(error.into()),
    }
}

/// `GET /admin/groups/{group}`.
pub(crate) async fn show(
    page: Page,
    id: GroupId,
    query: web::Query<GroupQuery>,
    flash: Flash,
) -> Result<HttpResponse, PageError> {
    let group = load_group(&page, id).await?;
    let base = group_page(id);
    let view = membership(&page, group, &query, &base).await?;
    let managers =
        db::run(&page.pool, move |conn| -> anyhow::Result<_> { Ok(db::groups::managers_of(conn, id.0)?) }).await?;
    let page_view = GroupPage { layout: page.layout().with_flash(&flash), view, managers, base, admin: true };
    Ok(flash.finish(render(StatusCode::OK, &page_view)?))
}

/// `POST /admin/groups/{group}/members/add`.
pub(crate) async fn add_members(
    page: Page,
    id: GroupId,
    form: CsrfForm<PeopleForm>,
) -> Result<HttpResponse, PageError> {
    change_members(&page, id.0, &form.0, true, MemberChanger::Admin, &group_page(id)).await
}

/// `POST /admin/groups/{group}/members/remove`.
pub(crate) async fn remove_members(
    page: Page,
    id: GroupId,
    form: CsrfForm<PeopleForm>,
) -> Result<HttpResponse, PageError> {
    change_members(&page, id.0, &form.0, false, MemberChanger::Admin, &group_page(id)).await
}

#[derive(Deserialize)]
pub(crate) struct ManagerForm {
    #[serde(default)]
    username: String,
    /// `add` or `remove`.
    #[serde(default)]
    change: String,
}

/// `POST /admin/groups/{group}/managers`: makes someone a manager of the group, or not.
pub(crate) async fn managers(page: Page, id: GroupId, form: CsrfForm<ManagerForm>) -> Result<HttpResponse, PageError> {
    let ManagerForm { username, change } = form.0;
    let back = group_page(id);
    let name = username.trim().to_lowercase();
    if name.is_empty() || name.chars().any(char::is_control) || name.len() > 320 {
        return Ok(page.redirect(&back, "Type the username of the person who should manage this group."));
    }
    let lookup = name.clone();
    let Some(user) =
        db::run(&page.pool, move |conn| -> anyhow::Result<_> { Ok(users::find_by_login(conn, &lookup)?) }).await?
    else {
        return Ok(page.redirect(&back, &format!("No one is called {name}.")));
    };
    let manager = change != "remove";
    match page.accounts().set_group_manager(page.actor(), id.0, user.id, manager).await {
        Ok((group, username)) => {
            let message = if manager {
                format!("{username} now manages {}: they can add and remove its members.", group.name)
            } else {
                format!("{username} no longer manages {}.", group.name)
            };
            Ok(page.redirect(&back, &message))
        }
        Err(AccountError::NotFound) => Err(PageError::NotFound),
        Err(error) => Err(error.into()),
    }
}
