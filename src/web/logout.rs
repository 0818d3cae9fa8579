//! `POST /logout`: ends the browser's session everywhere it could be used.
use actix_web::HttpResponse;
use actix_web::http::header;

use super::context::Page;
use super::form::{CsrfForm, NoFields};
use crate::db::audit::Action;
use crate::db::sessions::Ending;
use crate::error::PageError;

pub async fn submit(page: Page, _form: CsrfForm<NoFields>) -> Result<HttpResponse, PageError> {
    let ending = Ending::BySid(page.user.session_id.clone());
    let target = (page.user.user_id, page.user.username.to_string());
    page.accounts().end_sessions(page.actor(), ending, target, Action::Logout).await?;
    tracing::info!(event = "logout", username = %page.user.username, client_ip = %page.client.ip, "logged out");
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/login"))
        .cookie(page.cookies.session_removal())
        .cookie(page.cookies.refresh_removal())
        .finish())
}
