//! `GET /dashboard`: who you are and how long your access token lasts. Rendered from the
//! token alone, so it costs no database query.
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
    expires_at: String,
    expires_in: String,
}

pub async fn show(user: CurrentUser, csrf: web::Data<CsrfKey>, flash: Flash) -> Result<HttpResponse, PageError> {
    let expires = chrono::DateTime::from_timestamp(user.token_expires_at, 0).unwrap_or_default();
    let remaining = (expires - chrono::Utc::now()).num_minutes().max(0);
    let page = DashboardPage {
        layout: Layout::for_user(&user, &csrf).with_flash(&flash),
        display_name: &user.display_name,
        username: &user.username,
        role: user.role.as_str(),
        expires_at: {
            use chrono::{Datelike, Timelike};
            let (date, time) = (expires.date_naive(), expires.time());
            format!("{}-{:02}-{:02} {:02}:{:02} UTC", date.year(), date.month(), date.day(), time.hour(), time.minute())
        },
        expires_in: match remaining {
            0 => "less than a minute".to_owned(),
            1 => "1 minute".to_owned(),
            minutes => format!("{minutes} minutes"),
        },
    };
    Ok(flash.finish(render(StatusCode::OK, &page)?))
}
