//! `GET /account/password` and `POST /account/password`: change your own password, with the
//! current one (checked on the sign-in counters, so a stolen session cannot guess it faster
//! than a stranger).
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use serde::Deserialize;

use askama::Template;

use super::shared::load_account;
use crate::accounts::{ChosenPassword, FieldErrors};
use crate::error::PageError;
use crate::web::context::Page;
use crate::web::cookies;
use crate::web::form::CsrfForm;
use crate::web::layout::{Layout, render, with_retry_after};

#[derive(Deserialize)]
pub(crate) struct PasswordForm {
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

pub(crate) async fn show(page: Page) -> Result<HttpResponse, PageError> {
    render(StatusCode::OK, &PasswordPage { layout: page.layout(), errors: FieldErrors::default() })
}

pub(crate) async fn change(
    req: HttpRequest,
    page: Page,
    form: CsrfForm<PasswordForm>,
) -> Result<HttpResponse, PageError> {
    let form = form.0;
    let account = load_account(&page).await?;
    // The same counters as signing in to this account from this browser.
    let device = cookies::read(&req, page.cookies.device_name());
    let chosen = ChosenPassword { new: &form.new_password, confirm: &form.confirm_password };
    let keep = page.user.session_id.clone();
    let changed = page
        .accounts()
        .change_own_password(page.actor(), &account, &form.current_password, chosen, device, keep)
        .await?;
    if let Err(refused) = changed {
        let view = PasswordPage { layout: page.layout(), errors: refused.errors };
        return match refused.retry_after {
            Some(retry_after) => Ok(with_retry_after(render(StatusCode::TOO_MANY_REQUESTS, &view)?, retry_after)),
            None => render(StatusCode::UNPROCESSABLE_ENTITY, &view),
        };
    }
    tracing::info!(event = "password_changed", username = %page.user.username, client_ip = %page.client.ip, "password changed");
    Ok(page.redirect(
        "/account",
        "Your password was changed. You stay signed in here; your other sessions were signed out.",
    ))
}
