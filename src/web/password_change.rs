//! `/password/change`: after a one-time password or an admin reset, the user must choose
//! their own before anything else (the guard sends them here).
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::account::check_new_password;
use super::account::load_account;
use super::flash::redirect_with_flash;
use super::layout::{Layout, render};
use crate::accounts::{self, FieldErrors};
use crate::auth::client::client_ip;
use crate::auth::cookies::CookiePolicy;
use crate::auth::csrf::CsrfKey;
use crate::auth::password::PasswordHasher;
use crate::auth::sessions::Sessions;
use crate::db::{self, DbPool};
use crate::error::PageError;
use crate::web::extractors::CurrentUser;
use crate::web::form::CsrfForm;

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
    if !user.must_change_password {
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
    sessions: web::Data<Sessions>,
) -> Result<HttpResponse, PageError> {
    if !user.must_change_password {
        return Ok(HttpResponse::SeeOther().insert_header(("Location", "/account")).finish());
    }
    let account = load_account(&pool, user.user_id).await?;
    let mut errors = FieldErrors::default();
    let Some(new_password) = check_new_password(&account, &form.0.new_password, &form.0.confirm_password, &mut errors)
    else {
        return render(
            StatusCode::UNPROCESSABLE_ENTITY,
            &ChoosePage { layout: Layout::for_user(&user, &csrf), errors },
        );
    };
    // The hash on file is the one-time password's: it must not become the permanent one.
    let Some(hash) = hasher.hash_replacement(&new_password, account.password_hash.clone()).await? else {
        errors.add(
            "new_password",
            "That is the one-time password you were given. Choose a password of your own that nobody else knows.",
        );
        return render(
            StatusCode::UNPROCESSABLE_ENTITY,
            &ChoosePage { layout: Layout::for_user(&user, &csrf), errors },
        );
    };
    let actor = user.actor(client_ip(&req));
    let (id, keep) = (user.user_id, Some(user.session_id.clone()));
    db::run(&pool, move |conn| accounts::set_password(conn, &actor, id, &hash, false, "password.forced_change", keep))
        .await?;
    sessions.note_revocations(&pool).await;
    let mut response = redirect_with_flash(&cookies, "/dashboard", "Your new password is set. Welcome!");
    // This session's token still says "must change password": replace it.
    let access = sessions.reissue(&pool, &user.session_id).await?.ok_or(PageError::NotFound)?;
    let cookie = cookies.session(access.token, sessions.policy().access_token_ttl);
    response.add_cookie(&cookie).map_err(|error| PageError::Unexpected(error.into()))?;
    Ok(response)
}
