//! `GET /password/reset?token=…` and `POST /password/reset`: choose a new password through
//! the link "Forgot your password?" mailed. Showing the page spends nothing (mail scanners
//! open links); the form's POST spends the link, ends every session and sends a notice.
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::flash::redirect_with_flash;
use super::form::StrictForm;
use super::layout::{Layout, render};
use super::view::{ChoosePasswordPage, LinkQuery, link_gone};
use crate::accounts::{AccountError, FieldErrors, check_new_password};
use crate::auth::client::client_ip;
use crate::error::PageError;
use crate::mail::links::Purpose;
use crate::web::context::Services;

pub const PATH: &str = "/password/reset";

#[derive(Deserialize)]
pub struct ResetForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    new_password: String,
    #[serde(default)]
    confirm_password: String,
    /// The hidden username field password managers want; ignored.
    #[serde(default, rename = "username")]
    _username: String,
}

fn page<'a>(token: &'a str, username: &'a str, errors: FieldErrors) -> ChoosePasswordPage<'a> {
    ChoosePasswordPage {
        layout: Layout::default(),
        heading: "Choose a new password",
        intro: "Choose a new password for your account. You will be signed out everywhere and then sign in with it.",
        action: PATH,
        button: "Set new password",
        token,
        username,
        errors,
    }
}

pub async fn form(query: web::Query<LinkQuery>, app: Services) -> Result<HttpResponse, PageError> {
    let token = query.into_inner().token;
    match app.accounts().link_owner(token.clone(), Purpose::PasswordReset).await {
        Ok(user) => render(StatusCode::OK, &page(&token, user.username.as_str(), FieldErrors::default())),
        Err(AccountError::Link(state)) => link_gone(Purpose::PasswordReset, &state),
        Err(error) => Err(error.into()),
    }
}

pub async fn submit(req: HttpRequest, form: StrictForm<ResetForm>, app: Services) -> Result<HttpResponse, PageError> {
    let form = form.0;
    let user = match app.accounts().link_owner(form.token.clone(), Purpose::PasswordReset).await {
        Ok(user) => user,
        Err(AccountError::Link(state)) => return link_gone(Purpose::PasswordReset, &state),
        Err(error) => return Err(error.into()),
    };
    let mut errors = FieldErrors::default();
    let Some(password) = check_new_password(&user, &form.new_password, &form.confirm_password, &mut errors) else {
        return render(StatusCode::UNPROCESSABLE_ENTITY, &page(&form.token, user.username.as_str(), errors));
    };
    let hash = app.hasher.hash(&password).await?;
    match app.accounts().reset_password_with_link(form.token, hash, client_ip(&req)).await {
        Ok(user) => {
            tracing::info!(event = "password_reset_by_link", username = %user.username, "password reset with a mailed link");
            let message = "Your password is changed, and every session of your account has ended. Sign in with your new password.";
            let mut response = redirect_with_flash(&app.cookies, "/login", message);
            // Whatever session this browser had is over: its cookies go.
            for cookie in [app.cookies.session_removal(), app.cookies.refresh_removal()] {
                response.add_cookie(&cookie).map_err(|error| PageError::Unexpected(error.into()))?;
            }
            Ok(response)
        }
        Err(AccountError::Link(state)) => link_gone(Purpose::PasswordReset, &state),
        Err(error) => Err(error.into()),
    }
}
