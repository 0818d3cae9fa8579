//! `/groups/**`: for the people an administrator made managers of groups. They see the groups
//! they manage and add and remove members there — nothing else (no roles, no other groups, no
//! accounts, no sessions). `accounts` checks again, inside each change, that they manage it.
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;

use crate::accounts::MemberChanger;
use crate::db::{self, groups::Group};
use crate::error::PageError;
use crate::web::context::Page;
use crate::web::flash::Flash;
use crate::web::form::CsrfForm;
use crate::web::group_members::{GroupPage, GroupQuery, PeopleForm, change_members, membership};
use crate::web::layout::{Layout, render};
use crate::web::params::GroupId;

#[derive(Template)]
#[template(path = "groups/list.html")]
struct ManagedPage {
    layout: Layout,
    groups: Vec<Group>,
}

/// `GET /groups`: the groups you manage.
pub(crate) async fn list(page: Page, flash: Flash) -> Result<HttpResponse, PageError> {
    let user_id = page.user.user_id;
    let groups =
        db::run(&page.pool, move |conn| -> anyhow::Result<_> { Ok(db::groups::managed_by(conn, user_id)?) }).await?;
    let view = ManagedPage { layout: page.layout().with_flash(&flash), groups };
    Ok(flash.finish(render(StatusCode::OK, &view)?))
}

/// The group, if the signed-in user manages it (else a 404: nothing says it exists).
async fn managed(page: &Page, GroupId(id): GroupId) -> Result<Group, PageError> {
    let user_id = page.user.user_id;
    db::run(&page.pool, move |conn| -> anyhow::Result<_> {
        Ok(if db::groups::is_manager(conn, id, user_id)? { db::groups::find(conn, id)? } else { None })
    })
    .await?
    .ok_or(PageError::NotFound)
}

/// `GET /groups/{group}`.
pub(crate) async fn show(
    page: Page,
    id: GroupId,
    query: web::Query<GroupQuery>,
    flash: Flash,
) -> Result<HttpResponse, PageError> {
    let group = managed(&page, id).await?;
    let base = format!("/groups/{}", id.0);
    let view = membership(&page, group, &query, &base).await?;
    let page_view =
        GroupPage { layout: page.layout().with_flash(&flash), view, managers: Vec::new(), base, admin: false };
    Ok(flash.finish(render(StatusCode::OK, &page_view)?))
}

/// `POST /groups/{group}/members/add`.
pub(crate) async fn add_members(
    page: Page,
    id: GroupId,
    form: CsrfForm<PeopleForm>,
) -> Result<HttpResponse, PageError> {
    let back = format!("/groups/{}", id.0);
    change_members(&page, id.0, &form.0, true, MemberChanger::Manager, &back).await
}

/// `POST /groups/{group}/members/remove`.
pub(crate) async fn remove_members(
    page: Page,
    id: GroupId,
    form: CsrfForm<PeopleForm>,
) -> Result<HttpResponse, PageError> {
    let back = format!("/groups/{}", id.0);
    change_members(&page, id.0, &form.0, false, MemberChanger::Manager, &back).await
}
