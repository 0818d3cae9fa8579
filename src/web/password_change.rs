//! `/password/change`: after a one-time password or an admin reset, the user must choose
//! their own before anything else (the guard sends them here).
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::account::check_new_password;
use super::flash::redirect_with_flash;
use super::layout::{Layout, render};
use super::login::client_ip;
use crate::accounts::{self, FieldErrors};
use crate::auth::CurrentUser;
use crate::auth::cookies::CookiePolicy;
use crate::auth::csrf::{CsrfForm, CsrfKey};
use crate::auth::password::PasswordHasher;
use crate::db::audit::Actor;
use crate::db::{self, DbPool};
use crate::error::PageError;

#[derive(Deserialize)]
pub struct ChooseForm {
    #[serde(default)]
    new_password: String,
    #[serde(default)]
    confirm_password: String,
}

#[derive(Template)]
#[template(path = "password_change.html")]
struct ChoosePage {
    layout: Layout,
    errors: FieldErrors,
}

pub async fn form(user: CurrentUser, csrf: web::Data<CsrfKey>) -> Result<HttpResponse, PageError> {
    if !user.user.must_change_password {
        return Ok(HttpResponse::SeeOther().insert_header(("Location", "/account")).finish());
    }
    render(StatusCode::OK, &ChoosePage { layout: Layout::for_user(&user, &csrf), errors: FieldErrors::default() })
}

#[allow(clippy::too_many_arguments)]
pub async fn submit(
    req: HttpRequest,
    user: CurrentUser,
    form: CsrfForm<ChooseForm>,
    csrf: web::Data<CsrfKey>,
    cookies: web::Data<CookiePolicy>,
    pool: web::Data<DbPool>,
    hasher: web::Data<PasswordHasher>,
) -> Result<HttpResponse, PageError> {
    if !user.user.must_change_password {
        return Ok(HttpResponse::SeeOther().insert_header(("Location", "/account")).finish());
    }
    let mut errors = FieldErrors::default();
    let Some(new_password) =
        check_new_password(&user.user, &form.0.new_password, &form.0.confirm_password, &mut errors)
    else {
        return render(
            StatusCode::UNPROCESSABLE_ENTITY,
            &ChoosePage { layout: Layout::for_user(&user, &csrf), errors },
        );
    };
    let hash = hasher.hash(&new_password).await?;
    let actor = Actor::user(&user.user, Some(client_ip(&req)));
    let id = user.user.id;
    db::run(&pool, move |conn| accounts::set_password(conn, &actor, id, &hash, false, "password.forced_change"))
        .await?;
    Ok(redirect_with_flash(&cookies, "/dashboard", "Your new password is set. Welcome!"))
}
