//! `GET /admin/users/new` and `POST /admin/users/new`: add a user with a password the admin
//! types or a one-time password shown once.
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use secrecy::SecretString;
use serde::Deserialize;

use crate::accounts::{self, AccountError, AccountInput, FieldErrors, ValidAccount};
use crate::auth::client::client_ip;
use crate::auth::cookies::CookiePolicy;
use crate::auth::csrf::CsrfKey;
use crate::auth::password::PasswordHasher;
use crate::db::{self, DbPool};
use crate::error::PageError;
use crate::web::extractors::AdminUser;
use crate::web::flash::redirect_with_flash;
use crate::web::form::CsrfForm;
use crate::web::layout::{Layout, render};

#[derive(Deserialize, Default)]
pub struct NewUserForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    role: String,
    /// "generate" (a one-time password) or "set" (typed below).
    #[serde(default)]
    password_mode: String,
    #[serde(default)]
    password: String,
    /// A checkbox: present when ticked.
    must_change: Option<String>,
}

#[derive(Template)]
#[template(path = "admin/user_new.html")]
struct NewUserPage<'a> {
    layout: Layout,
    form: &'a NewUserForm,
    generate: bool,
    must_change: bool,
    errors: FieldErrors,
}

/// Shown once, right after the password was made; never stored anywhere readable.
#[derive(Template)]
#[template(path = "admin/one_time_password.html")]
pub struct OneTimePasswordPage<'a> {
    pub layout: Layout,
    pub heading: &'a str,
    pub user_id: i64,
    pub username: &'a str,
    pub password: &'a str,
}

pub async fn form(admin: AdminUser, csrf: web::Data<CsrfKey>) -> Result<HttpResponse, PageError> {
    let form = NewUserForm { role: "user".into(), password_mode: "generate".into(), ..Default::default() };
    let page = NewUserPage {
        layout: Layout::for_user(&admin, &csrf),
        form: &form,
        generate: true,
        must_change: true,
        errors: FieldErrors::default(),
    };
    render(StatusCode::OK, &page)
}

#[allow(clippy::too_many_arguments)]
pub async fn create(
    req: HttpRequest,
    admin: AdminUser,
    form: CsrfForm<NewUserForm>,
    csrf: web::Data<CsrfKey>,
    cookies: web::Data<CookiePolicy>,
    pool: web::Data<DbPool>,
    hasher: web::Data<PasswordHasher>,
) -> Result<HttpResponse, PageError> {
    let form = form.0;
    let generate = form.password_mode != "set";
    let must_change = generate || form.must_change.is_some();
    let password = if generate { accounts::generate_one_time_password() } else { form.password.clone() };
    let rerender = |errors: FieldErrors| {
        let page = NewUserPage { layout: Layout::for_user(&admin, &csrf), form: &form, generate, must_change, errors };
        render(StatusCode::UNPROCESSABLE_ENTITY, &page)
    };
    let account = match ValidAccount::parse(AccountInput {
        username: &form.username,
        email: &form.email,
        display_name: &form.display_name,
        role: &form.role,
        password: SecretString::from(password.clone()),
    }) {
        Ok(account) => account,
        Err(errors) => return rerender(errors),
    };
    let hash = hasher.hash(&account.password).await?;
    let actor = admin.actor(client_ip(&req));
    let user = match db::run(&pool, move |conn| accounts::create(conn, &actor, &account, &hash, must_change)).await {
        Ok(user) => user,
        Err(AccountError::Field((field, message))) => {
            let mut errors = FieldErrors::default();
            errors.add(field, message);
            return rerender(errors);
        }
        Err(error) => return Err(error.into()),
    };
    tracing::info!(event = "user_created", actor = %admin.username, username = %user.username, "user created");
    if generate {
        let page = OneTimePasswordPage {
            layout: Layout::for_user(&admin, &csrf),
            heading: "User created",
            user_id: user.id,
            username: &user.username,
            password: &password,
        };
        return render(StatusCode::OK, &page);
    }
    Ok(redirect_with_flash(&cookies, &format!("/admin/users/{}", user.id), &format!("User {} created.", user.username)))
}
