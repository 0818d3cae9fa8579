//! `/account/sessions`: the signed-in user's sessions (this one marked), sign out one, sign out
//! all others.
use actix_web::HttpResponse;
use actix_web::http::{StatusCode, header};
use askama::Template;

use crate::db::audit::Action;
use crate::db::sessions::Ending;
use crate::error::PageError;
use crate::web::context::Page;
use crate::web::flash::Flash;
use crate::web::form::{CsrfForm, NoFields};
use crate::web::layout::{Layout, render};
use crate::web::params::SessionId;
use crate::web::tables::{SessionRow, session_rows};

#[derive(Template)]
#[template(path = "account/sessions.html")]
struct SessionsPage {
    layout: Layout,
    sessions: Vec<SessionRow>,
    others: usize,
}

pub(crate) async fn list(page: Page, flash: Flash) -> Result<HttpResponse, PageError> {
    let open = page.sessions.list_with_apps(&page.pool, page.user.user_id).await?;
    let rows = session_rows(&open, Some(&page.user.session_id), "/account/sessions", &page.clock());
    let others = rows.iter().filter(|row| !row.is_current).count();
    let view = SessionsPage { layout: page.layout().with_flash(&flash), sessions: rows, others };
    Ok(flash.finish(render(StatusCode::OK, &view)?))
}

pub(crate) async fn revoke(
    page: Page,
    SessionId(id): SessionId,
    _form: CsrfForm<NoFields>,
) -> Result<HttpResponse, PageError> {
    let open = page.sessions.list(&page.pool, page.user.user_id).await?;
    let is_current = open.iter().any(|session| session.id == id && session.sid == page.user.session_id);
    let ending = Ending::One { user_id: page.user.user_id, id };
    let target = (page.user.user_id, page.user.username.to_string());
    let ended = page.accounts().end_sessions(page.actor(), ending, target, Action::SessionRevoke).await?;
    if is_current {
        // Signing this device out is a logout.
        let mut response = HttpResponse::SeeOther();
        response.insert_header((header::LOCATION, "/login"));
        for cookie in page.cookies.signed_out() {
            response.cookie(cookie);
        }
        return Ok(response.finish());
    }
    let message = if ended == 0 { "That session had already ended." } else { "The session was signed out." };
    Ok(page.redirect("/account/sessions", message))
}

pub(crate) async fn revoke_others(page: Page, _form: CsrfForm<NoFields>) -> Result<HttpResponse, PageError> {
    let ending = Ending::AllOfUser { user_id: page.user.user_id, except_sid: Some(page.user.session_id.clone()) };
    let target = (page.user.user_id, page.user.username.to_string());
    let ended = page.accounts().end_sessions(page.actor(), ending, target, Action::SessionRevokeOthers).await?;
    let message = match ended {
        0 => "There were no other sessions.".to_owned(),
        1 => "1 other session was signed out.".to_owned(),
        n => format!("{n} other sessions were signed out."),
    };
    Ok(page.redirect("/account/sessions", &message))
}
