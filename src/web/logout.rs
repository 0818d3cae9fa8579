//! `POST /logout`: ends the browser session.
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::login::client_ip;
use crate::auth::CurrentUser;
use crate::auth::cookies::CookiePolicy;
use crate::auth::csrf::{CsrfForm, HasCsrfToken};
use crate::db::audit::{self, Actor};
use crate::db::{self, DbPool};
use crate::error::PageError;

#[derive(Deserialize)]
pub struct LogoutForm {
    #[serde(default)]
    csrf_token: String,
}

impl HasCsrfToken for LogoutForm {
    fn csrf_token(&self) -> &str {
        &self.csrf_token
    }
}

pub async fn submit(
    req: HttpRequest,
    user: CurrentUser,
    _form: CsrfForm<LogoutForm>,
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
