//! `GET /account/password` and `POST /account/password`: change your own password, with the
//! current one (checked on the sign-in counters, so a stolen session cannot guess it faster
//! than a stranger).
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use secrecy::SecretString;
use serde::Deserialize;

use askama::Template;

use super::page::load_account;
use crate::accounts::{FieldErrors, PasswordChange, check_new_password};
use crate::auth::cookies;
use crate::auth::credentials::{PasswordCheck, check_current_password};
use crate::error::PageError;
use crate::web::context::Page;
use crate::web::form::CsrfForm;
use crate::web::layout::{Layout, render, with_retry_after};
use crate::web::view::wait_phrase;

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
#[template(path = "account/password.html")]
struct PasswordPage {
    layout: Layout,
    errors: FieldErrors,
}

pub async fn show(page: Page) -> Result<HttpResponse, PageError> {
    render(StatusCode::OK, &PasswordPage { layout: page.layout(), errors: FieldErrors::default() })
}

pub async fn change(req: HttpRequest, page: Page, form: CsrfForm<PasswordForm>) -> Result<HttpResponse, PageError> {
    let form = form.0;
    let account = load_account(&page).await?;
    let mut errors = FieldErrors::default();
    let mut throttled = None;
    if form.current_password.is_empty() {
        errors.add("current_password", "Enter your current password");
    } else {
        // The same counters as signing in to this account from this browser.
        let device = cookies::read(&req, page.cookies.device_name()).map(str::to_owned);
        let current = SecretString::from(form.current_password.clone());
        let checked = check_current_password(
            &page.pool,
            &page.hasher,
            &page.throttle,
            &account,
            current,
            page.actor(),
            device.as_deref(),
        )
        .await?;
        match checked {
            PasswordCheck::Right => {}
            PasswordCheck::Wrong => errors.add("current_password", "Your current password is not right"),
            PasswordCheck::Throttled { retry_after } => {
                let message = format!("Too many wrong passwords. Wait {} and try again.", wait_phrase(retry_after));
                errors.add("current_password", message);
                throttled = Some(retry_after);
            }
        }
    }
    let new_password = check_new_password(&account, &form.new_password, &form.confirm_password, &mut errors);
    let replacement = match new_password.filter(|_| errors.is_empty()) {
        Some(new_password) => page.hasher.hash_replacement(&new_password, account.password_hash.clone()).await?,
        None => None,
    };
    let Some(hash) = replacement.filter(|_| errors.is_empty()) else {
        if errors.is_empty() {
            errors.add("new_password", "Your new password must be different from your current one");
        }
        let view = PasswordPage { layout: page.layout(), errors };
        return match throttled {
            Some(retry_after) => Ok(with_retry_after(render(StatusCode::TOO_MANY_REQUESTS, &view)?, retry_after)),
            None => render(StatusCode::UNPROCESSABLE_ENTITY, &view),
        };
    };
    let keep = Some(page.user.session_id.clone());
    page.accounts().set_password(page.actor(), page.user.user_id, hash, PasswordChange::OwnChoice, keep).await?;
    tracing::info!(event = "password_changed", username = %page.user.username, client_ip = %page.client.ip, "password changed");
    Ok(page.redirect(
        "/account",
        "Your password was changed. You stay signed in here; your other sessions were signed out.",
    ))
}
