//! `POST /logout`: ends the browser's session everywhere it could be used.
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::auth::client::client_ip;
use crate::auth::cookies::CookiePolicy;
use crate::auth::sessions::Sessions;
use crate::db::DbPool;
use crate::db::sessions::Ending;
use crate::error::PageError;
use crate::web::extractors::CurrentUser;
use crate::web::form::{CsrfForm, NoFields};

pub async fn submit(
    req: HttpRequest,
    user: CurrentUser,
    _form: CsrfForm<NoFields>,
    cookies: web::Data<CookiePolicy>,
    pool: web::Data<DbPool>,
    sessions: web::Data<Sessions>,
) -> Result<HttpResponse, PageError> {
    let ending = Ending::BySid(user.session_id.clone());
    let target = (user.user_id, user.username.clone());
    sessions.end(&pool, ending, user.actor(client_ip(&req)), target, "logout").await?;
    tracing::info!(event = "logout", username = %user.username, client_ip = %client_ip(&req), "logged out");
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/login"))
        .cookie(cookies.session_removal())
        .cookie(cookies.refresh_removal())
        .finish())
}
