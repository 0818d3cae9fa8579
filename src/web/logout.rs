//! `POST /logout`: ends the browser session.
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use super::login::client_ip;
use crate::auth::CurrentUser;
use crate::auth::cookies::CookiePolicy;
use crate::auth::csrf::{CsrfForm, NoFields};
use crate::db::audit::{self, Actor};
use crate::db::{self, DbPool};
use crate::error::PageError;

pub async fn submit(
    req: HttpRequest,
    user: CurrentUser,
    _form: CsrfForm<NoFields>,
    cookies: web::Data<CookiePolicy>,
    pool: web::Data<DbPool>,
) -> Result<HttpResponse, PageError> {
    let actor = Actor::user(&user.user, Some(client_ip(&req)));
    let target = (user.user.id, user.user.username.clone());
    db::run(&pool, move |conn| -> anyhow::Result<()> {
        Ok(audit::record(conn, &actor, "logout", Some((target.0, &target.1)), "")?)
    })
    .await?;
    tracing::info!(event = "logout", username = %user.user.username, client_ip = %client_ip(&req), "logged out");
    Ok(HttpResponse::SeeOther().insert_header((header::LOCATION, "/login")).cookie(cookies.session_removal()).finish())
}
