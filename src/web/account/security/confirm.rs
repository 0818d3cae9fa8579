//! `/account/security/confirm`: "Confirm it is you". Changes that control sign-in (the e-mail
//! address, passkeys, an authenticator app) need the password within the last few minutes
//! (`PORTCULLIS_FRESH_PROOF`, 5 by default; ASVS 5.0 7.5.1), so a stolen session alone cannot
//! take the account over. The password is checked on the sign-in counters, like every other
//! check of the current password; a right one renews the session's proof and returns to `next`.
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use crate::accounts::FieldErrors;
use crate::auth::credentials::PasswordCheck;
use crate::domain::SafeNextPath;
use crate::error::PageError;
use crate::web::account::shared::load_account;
use crate::web::context::Page;
use crate::web::form::CsrfForm;
use crate::web::layout::{Layout, render, with_retry_after};
use crate::web::time_words::wait_phrase;

#[derive(Template)]
#[template(path = "account/confirm.html")]
struct ConfirmPage {
    layout: Layout,
    username: String,
    next: String,
    minutes: String,
    errors: FieldErrors,
}

#[derive(Deserialize)]
pub(crate) struct NextQuery {
    #[serde(default)]
    next: String,
}

#[derive(Deserialize)]
pub(crate) struct ConfirmForm {
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    next: String,
}

/// Where to go afterwards: one of our paths, else the security page.
fn back(raw: &str) -> String {
    SafeNextPath::parse(raw).map_or_else(|| super::PATH.to_owned(), |path| path.as_str().to_owned())
}

fn view(page: &Page, next: String, errors: FieldErrors) -> ConfirmPage {
    let minutes = page.sessions.policy().fresh_proof.as_secs().div_ceil(60);
    ConfirmPage {
        layout: page.layout(),
        username: page.user.username.clone(),
        next,
        minutes: if minutes == 1 { "a minute".to_owned() } else { format!("{minutes} minutes") },
        errors,
    }
}

pub(crate) async fn show(page: Page, query: actix_web::web::Query<NextQuery>) -> Result<HttpResponse, PageError> {
    let next = back(&query.next);
    let response = render(StatusCode::OK, &view(&page, next.clone(), FieldErrors::default()))?;
    Ok(crate::web::app_return::for_next(&page, &next, response).await)
}

pub(crate) async fn submit(
    req: HttpRequest,
    page: Page,
    form: CsrfForm<ConfirmForm>,
) -> Result<HttpResponse, PageError> {
    let ConfirmForm { current_password, next } = form.0;
    let next = back(&next);
    let mut errors = FieldErrors::default();
    if current_password.is_empty() {
        errors.add("current_password", "Enter your password");
        return render(StatusCode::UNPROCESSABLE_ENTITY, &view(&page, next, errors));
    }
    let account = load_account(&page).await?;
    match super::check_password(&req, &page, &account, current_password).await? {
        PasswordCheck::Right => {
            let mut response = page.redirect(&next, "Thank you. You can go on.");
            if !page.sessions.note_proof(&page.pool, &page.user.session_id).await?
                || !page.reissue_into(&page.user.session_id, &mut response).await?
            {
                return Err(PageError::NotFound);
            }
            Ok(response)
        }
        PasswordCheck::Wrong => {
            errors.add("current_password", "That password is not right");
            render(StatusCode::UNPROCESSABLE_ENTITY, &view(&page, next, errors))
        }
        PasswordCheck::Throttled { retry_after } => {
            let message = format!("Too many wrong passwords. Wait {} and try again.", wait_phrase(retry_after));
            errors.add("current_password", message);
            Ok(with_retry_after(render(StatusCode::TOO_MANY_REQUESTS, &view(&page, next, errors))?, retry_after))
        }
    }
}
