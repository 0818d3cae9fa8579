//! `/account/sessions`: the signed-in user's sessions (this one marked), revoke one, revoke
//! all others. `SessionRow` and the table template are shared with the admin user page.
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use super::admin::format_time;
use super::flash::{Flash, redirect_with_flash};
use super::layout::{Layout, render};
use crate::auth::client::client_ip;
use crate::auth::cookies::CookiePolicy;
use crate::auth::csrf::CsrfKey;
use crate::auth::sessions::Sessions;
use crate::db::DbPool;
use crate::db::sessions::{Ending, Session};
use crate::error::PageError;
use crate::web::extractors::CurrentUser;
use crate::web::form::{CsrfForm, NoFields};

/// One line of a sessions table.
pub struct SessionRow {
    pub id: i64,
    pub device: String,
    pub client_ip: String,
    pub via: String,
    pub created: String,
    pub last_used: String,
    pub is_current: bool,
    /// Where its "Sign out" button posts.
    pub revoke_action: String,
}

pub fn session_rows(sessions: &[Session], current_sid: Option<&str>, revoke_prefix: &str) -> Vec<SessionRow> {
    sessions
        .iter()
        .map(|session| SessionRow {
            id: session.id,
            device: session.user_agent.clone(),
            client_ip: session.client_ip.clone(),
            via: if session.via == "api" { "API".to_owned() } else { "Web".to_owned() },
            created: format_time(session.created_at),
            last_used: format_time(session.last_used_at),
            is_current: current_sid == Some(session.sid.as_str()),
            revoke_action: format!("{revoke_prefix}/{}/revoke", session.id),
        })
        .collect()
}

#[derive(Template)]
#[template(path = "sessions.html")]
struct SessionsPage {
    layout: Layout,
    sessions: Vec<SessionRow>,
    others: usize,
}

pub async fn list(
    user: CurrentUser,
    csrf: web::Data<CsrfKey>,
    pool: web::Data<DbPool>,
    sessions: web::Data<Sessions>,
    flash: Flash,
) -> Result<HttpResponse, PageError> {
    let open = sessions.list(&pool, user.user_id).await?;
    let rows = session_rows(&open, Some(&user.session_id), "/account/sessions");
    let others = rows.iter().filter(|row| !row.is_current).count();
    let page = SessionsPage { layout: Layout::for_user(&user, &csrf).with_flash(&flash), sessions: rows, others };
    Ok(flash.finish(render(StatusCode::OK, &page)?))
}

/// `{id}` from the path: a malformed id is a 400.
pub fn parse_session_id(raw: &str) -> Result<i64, PageError> {
    raw.parse().map_err(|_| {
        PageError::BadRequest(format!("“{}” is not a session id.", raw.chars().take(40).collect::<String>()))
    })
}

#[allow(clippy::too_many_arguments)]
pub async fn revoke(
    req: HttpRequest,
    user: CurrentUser,
    id: web::Path<String>,
    _form: CsrfForm<NoFields>,
    cookies: web::Data<CookiePolicy>,
    pool: web::Data<DbPool>,
    sessions: web::Data<Sessions>,
) -> Result<HttpResponse, PageError> {
    let id = parse_session_id(&id)?;
    let open = sessions.list(&pool, user.user_id).await?;
    let is_current = open.iter().any(|session| session.id == id && session.sid == user.session_id);
    let ending = Ending::One { user_id: user.user_id, id };
    let target = (user.user_id, user.username.clone());
    let ended = sessions.end(&pool, ending, user.actor(client_ip(&req)), target, "session.revoke").await?;
    if is_current {
        // Signing this device out is a logout.
        return Ok(HttpResponse::SeeOther()
            .insert_header((header::LOCATION, "/login"))
            .cookie(cookies.session_removal())
            .cookie(cookies.refresh_removal())
            .finish());
    }
    let message = if ended == 0 { "That session had already ended." } else { "The session was signed out." };
    Ok(redirect_with_flash(&cookies, "/account/sessions", message))
}

pub async fn revoke_others(
    req: HttpRequest,
    user: CurrentUser,
    _form: CsrfForm<NoFields>,
    cookies: web::Data<CookiePolicy>,
    pool: web::Data<DbPool>,
    sessions: web::Data<Sessions>,
) -> Result<HttpResponse, PageError> {
    let ending = Ending::AllOfUser { user_id: user.user_id, except_sid: Some(user.session_id.clone()) };
    let target = (user.user_id, user.username.clone());
    let ended = sessions.end(&pool, ending, user.actor(client_ip(&req)), target, "session.revoke_others").await?;
    let message = match ended {
        0 => "There were no other sessions.".to_owned(),
        1 => "1 other session was signed out.".to_owned(),
        n => format!("{n} other sessions were signed out."),
    };
    Ok(redirect_with_flash(&cookies, "/account/sessions", &message))
}
