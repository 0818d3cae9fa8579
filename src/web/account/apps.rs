//! `/account/apps`: the apps the user signed in to through Portcullis, what each may learn
//! and when it last used it, and disconnecting one (its tokens end, and it asks again).
use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use askama::Template;

use crate::db;
use crate::error::PageError;
use crate::oauth::connections;
use crate::web::context::Page;
use crate::web::flash::Flash;
use crate::web::form::{CsrfForm, NoFields};
use crate::web::layout::{Layout, render};
use crate::web::params::AppId;
use crate::web::tables::{AppRow, app_rows};

pub(crate) const PATH: &str = "/account/apps";

#[derive(Template)]
#[template(path = "account/apps.html")]
struct AppsPage {
    layout: Layout,
    apps: Vec<AppRow>,
    /// Where the disconnect buttons post (`{base}/{app}/disconnect`).
    disconnect_base: Option<&'static str>,
}

pub(crate) async fn list(page: Page, flash: Flash) -> Result<HttpResponse, PageError> {
    let user_id = page.user.user_id;
    let apps =
        db::run(&page.pool, move |conn| -> anyhow::Result<_> { Ok(connections::of_user(conn, user_id)?) }).await?;
    let view = AppsPage {
        layout: page.layout().with_flash(&flash),
        apps: app_rows(apps, &page.clock()),
        disconnect_base: Some(PATH),
    };
    Ok(flash.finish(render(StatusCode::OK, &view)?))
}

pub(crate) async fn disconnect(
    page: Page,
    AppId(id): AppId,
    _form: CsrfForm<NoFields>,
) -> Result<HttpResponse, PageError> {
    let (actor, user_id) = (page.actor(), page.user.user_id);
    let name = db::run(&page.pool, move |conn| connections::disconnect(conn, &actor, user_id, id)).await?;
    page.sessions.sync_revocations(&page.pool).await?;
    let message = match name {
        Some(name) => format!("{name} is disconnected: it was signed out, and asks again next time."),
        None => "That app was not connected.".to_owned(),
    };
    Ok(page.redirect(PATH, &message))
}
