//! `GET /dashboard`: who you are and how you signed in. Rendered from the token alone, so it
//! costs no database query.
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;

use super::flash::Flash;
use super::layout::{Layout, render};
use crate::auth::csrf::CsrfKey;
use crate::error::PageError;
use crate::web::extractors::CurrentUser;

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage<'a> {
    layout: Layout,
    display_name: &'a str,
    username: &'a str,
    role: &'a str,
    email: &'a str,
    /// How this session was signed in, in words ("password and one-time code").
    signed_in_with: String,
}

pub(crate) async fn show(user: CurrentUser, csrf: web::Data<CsrfKey>, flash: Flash) -> Result<HttpResponse, PageError> {
    let page = DashboardPage {
        layout: Layout::for_user(&user, &csrf).with_flash(&flash),
        display_name: &user.display_name,
        username: &user.username,
        role: user.role.as_str(),
        email: &user.email,
        signed_in_with: crate::auth::sessions::describe_amr(&user.amr.join(" ")),
    };
    Ok(flash.finish(render(StatusCode::OK, &page)?))
}
