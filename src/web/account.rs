//! `/account`: every user's own profile and password.
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use secrecy::SecretString;
use serde::Deserialize;

use super::flash::{Flash, redirect_with_flash};
use super::layout::{Layout, render};
use super::login::client_ip;
use crate::accounts::{self, AccountError, FieldErrors};
use crate::auth::CurrentUser;
use crate::auth::cookies::CookiePolicy;
use crate::auth::csrf::{CsrfForm, CsrfKey};
use crate::auth::password::PasswordHasher;
use crate::db::audit::Actor;
use crate::db::users::{ProfileChanges, User};
use crate::db::{self, DbPool};
use crate::domain::{DisplayName, Email, NewPassword};
use crate::error::PageError;

#[derive(Deserialize, Default)]
pub struct ProfileForm {
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    email: String,
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    new_password: String,
    #[serde(default)]
    confirm_password: String,
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage<'a> {
    layout: Layout,
    user: &'a User,
    role: &'static str,
    profile: ProfileForm,
    profile_errors: FieldErrors,
    password_errors: FieldErrors,
}

fn account_page<'a>(user: &'a CurrentUser, csrf: &CsrfKey, profile: Option<ProfileForm>) -> AccountPage<'a> {
    AccountPage {
        layout: Layout::for_user(user, csrf),
        user: &user.user,
        role: user.user.role().as_str(),
        profile: profile.unwrap_or_else(|| ProfileForm {
            display_name: user.user.display_name.clone(),
            email: user.user.email.clone(),
        }),
        profile_errors: FieldErrors::default(),
        password_errors: FieldErrors::default(),
    }
}

pub async fn show(user: CurrentUser, csrf: web::Data<CsrfKey>, flash: Flash) -> Result<HttpResponse, PageError> {
    let mut page = account_page(&user, &csrf, None);
    page.layout = page.layout.with_flash(&flash);
    Ok(flash.finish(render(StatusCode::OK, &page)?))
}

pub async fn update_profile(
    req: HttpRequest,
    user: CurrentUser,
    form: CsrfForm<ProfileForm>,
    csrf: web::Data<CsrfKey>,
    cookies: web::Data<CookiePolicy>,
    pool: web::Data<DbPool>,
) -> Result<HttpResponse, PageError> {
    let form = form.0;
    let mut errors = FieldErrors::default();
    let display_name = errors.check("display_name", DisplayName::parse(&form.display_name));
    let email = errors.check("email", Email::parse(&form.email));
    let (Some(display_name), Some(email)) = (display_name, email) else {
        let mut page = account_page(&user, &csrf, Some(form));
        page.profile_errors = errors;
        return render(StatusCode::UNPROCESSABLE_ENTITY, &page);
    };
    let actor = Actor::user(&user.user, Some(client_ip(&req)));
    let id = user.user.id;
    let saved = db::run(&pool, move |conn| {
        let changes = ProfileChanges { email: Some(&email), display_name: Some(&display_name), ..Default::default() };
        accounts::update_profile(conn, &actor, id, &changes)
    })
    .await;
    match saved {
        Ok(_) => Ok(redirect_with_flash(&cookies, "/account", "Your details were saved.")),
        Err(AccountError::Field((field, message))) => {
            errors.add(field, message);
            let mut page = account_page(&user, &csrf, Some(form));
            page.profile_errors = errors;
            render(StatusCode::UNPROCESSABLE_ENTITY, &page)
        }
        Err(error) => Err(error.into()),
    }
}

/// The checks every new password passes: typed twice alike, long and uncommon enough.
pub fn check_new_password(user: &User, new: &str, confirm: &str, errors: &mut FieldErrors) -> Option<NewPassword> {
    let parsed = errors.check(
        "new_password",
        NewPassword::parse(SecretString::from(new), &[&user.username, &user.email, &user.display_name]),
    );
    if parsed.is_some() && new != confirm {
        errors.add("confirm_password", "The two passwords are not the same");
        return None;
    }
    parsed
}

#[allow(clippy::too_many_arguments)]
pub async fn change_password(
    req: HttpRequest,
    user: CurrentUser,
    form: CsrfForm<PasswordForm>,
    csrf: web::Data<CsrfKey>,
    cookies: web::Data<CookiePolicy>,
    pool: web::Data<DbPool>,
    hasher: web::Data<PasswordHasher>,
) -> Result<HttpResponse, PageError> {
    let form = form.0;
    let mut errors = FieldErrors::default();
    let current_ok =
        hasher.verify(SecretString::from(form.current_password.clone()), Some(user.user.password_hash.clone())).await?;
    if !current_ok {
        errors.add("current_password", "Your current password is not right");
    }
    let new_password = check_new_password(&user.user, &form.new_password, &form.confirm_password, &mut errors);
    let Some(new_password) = new_password.filter(|_| errors.is_empty()) else {
        let mut page = account_page(&user, &csrf, None);
        page.password_errors = errors;
        return render(StatusCode::UNPROCESSABLE_ENTITY, &page);
    };
    let hash = hasher.hash(&new_password).await?;
    let actor = Actor::user(&user.user, Some(client_ip(&req)));
    let id = user.user.id;
    db::run(&pool, move |conn| accounts::set_password(conn, &actor, id, &hash, false, "password.change")).await?;
    tracing::info!(event = "password_changed", username = %user.user.username, client_ip = %client_ip(&req), "password changed");
    Ok(redirect_with_flash(&cookies, "/account", "Your password was changed."))
}
