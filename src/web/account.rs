//! `/account`: every user's own profile and password.
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use secrecy::SecretString;
use serde::Deserialize;

use super::flash::{Flash, redirect_with_flash};
use super::layout::{Layout, render};
use crate::accounts::{self, AccountError, FieldErrors};
use crate::auth::client::client_ip;
use crate::auth::cookies::CookiePolicy;
use crate::auth::csrf::{CsrfForm, CsrfKey};
use crate::auth::password::PasswordHasher;
use crate::auth::sessions::Sessions;
use crate::auth::{Authenticated, CurrentUser};
use crate::db::users::{self, ProfileChanges, User};
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

/// The signed-in user's row as it is now (the token only carries what the guard needs).
pub async fn load_account(pool: &DbPool, user_id: i64) -> Result<User, PageError> {
    db::run(pool, move |conn| -> anyhow::Result<Option<User>> { Ok(users::find_by_id(conn, user_id)?) })
        .await?
        .ok_or(PageError::NotFound)
}

fn account_page<'a>(
    auth: &Authenticated,
    account: &'a User,
    csrf: &CsrfKey,
    profile: Option<ProfileForm>,
) -> AccountPage<'a> {
    AccountPage {
        layout: Layout::for_user(auth, csrf),
        user: account,
        role: account.role().as_str(),
        profile: profile.unwrap_or_else(|| ProfileForm {
            display_name: account.display_name.clone(),
            email: account.email.clone(),
        }),
        profile_errors: FieldErrors::default(),
        password_errors: FieldErrors::default(),
    }
}

pub async fn show(
    user: CurrentUser,
    csrf: web::Data<CsrfKey>,
    pool: web::Data<DbPool>,
    flash: Flash,
) -> Result<HttpResponse, PageError> {
    let account = load_account(&pool, user.user_id).await?;
    let mut page = account_page(&user, &account, &csrf, None);
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
    sessions: web::Data<Sessions>,
) -> Result<HttpResponse, PageError> {
    let form = form.0;
    let account = load_account(&pool, user.user_id).await?;
    let mut errors = FieldErrors::default();
    let display_name = errors.check("display_name", DisplayName::parse(&form.display_name));
    let email = errors.check("email", Email::parse(&form.email));
    let (Some(display_name), Some(email)) = (display_name, email) else {
        let mut page = account_page(&user, &account, &csrf, Some(form));
        page.profile_errors = errors;
        return render(StatusCode::UNPROCESSABLE_ENTITY, &page);
    };
    let actor = user.actor(client_ip(&req));
    let id = user.user_id;
    let saved = db::run(&pool, move |conn| {
        let changes = ProfileChanges { email: Some(&email), display_name: Some(&display_name), ..Default::default() };
        accounts::update_profile(conn, &actor, id, &changes)
    })
    .await;
    match saved {
        Ok(_) => {
            let mut response = redirect_with_flash(&cookies, "/account", "Your details were saved.");
            // The page header shows the display name from the token: issue one that has the new name.
            if let Some(access) = sessions.reissue(&pool, &user.session_id).await? {
                let cookie = cookies.session(access.token, sessions.policy().access_token_ttl);
                response.add_cookie(&cookie).map_err(|error| PageError::Unexpected(error.into()))?;
            }
            Ok(response)
        }
        Err(AccountError::Field((field, message))) => {
            errors.add(field, message);
            let mut page = account_page(&user, &account, &csrf, Some(form));
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
    sessions: web::Data<Sessions>,
) -> Result<HttpResponse, PageError> {
    let form = form.0;
    let account = load_account(&pool, user.user_id).await?;
    let mut errors = FieldErrors::default();
    let current_ok =
        hasher.verify(SecretString::from(form.current_password.clone()), Some(account.password_hash.clone())).await?;
    if !current_ok {
        errors.add("current_password", "Your current password is not right");
    }
    let new_password = check_new_password(&account, &form.new_password, &form.confirm_password, &mut errors);
    let Some(new_password) = new_password.filter(|_| errors.is_empty()) else {
        let mut page = account_page(&user, &account, &csrf, None);
        page.password_errors = errors;
        return render(StatusCode::UNPROCESSABLE_ENTITY, &page);
    };
    let hash = hasher.hash(&new_password).await?;
    let actor = user.actor(client_ip(&req));
    let (id, keep) = (user.user_id, Some(user.session_id.clone()));
    db::run(&pool, move |conn| accounts::set_password(conn, &actor, id, &hash, false, "password.change", keep)).await?;
    sessions.note_revocations(&pool).await;
    tracing::info!(event = "password_changed", username = %user.username, client_ip = %client_ip(&req), "password changed");
    Ok(redirect_with_flash(
        &cookies,
        "/account",
        "Your password was changed. You stay signed in here; your other sessions were signed out.",
    ))
}
