//! `POST /logout`: ends the browser's session everywhere it could be used.
use actix_web::HttpResponse;

use super::context::Page;
use super::form::{CsrfForm, NoFields};
use crate::db::audit::Action;
use crate::db::sessions::Ending;
use crate::error::PageError;

pub(crate) async fn submit(page: Page, _form: CsrfForm<NoFields>) -> Result<HttpResponse, PageError> {
    let ending = Ending::BySid(page.user.session_id.clone());
    let target = (page.user.user_id, page.user.username.to_string());
    page.accounts().end_sessions(page.actor(), ending, target, Action::Logout).await?;
    tracing::info!(event = "logout", username = %page.user.username, client_ip = %page.client.ip, "logged out");
    let mut response = page.redirect("/login", "You have signed out.");
    for cookie in page.cookies.signed_out() {
        response.add_cookie(&cookie).map_err(|error| PageError::Unexpected(error.into()))?;
    }
    Ok(response)
}
