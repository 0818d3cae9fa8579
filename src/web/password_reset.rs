//! `GET /password/reset?token=…` and `POST /password/reset`: choose a new password through
//! the link "Forgot your password?" mailed. The POST spends the link, ends every session and
//! sends a notice; the user then signs in with the new password (and their second factor).
use actix_web::{HttpRequest, HttpResponse, web};

use super::flash::redirect_with_flash;
use super::form::StrictForm;
use super::mailed_links::{ChooseForm, LinkQuery, PasswordLink};
use crate::error::PageError;
use crate::mail::links::Purpose;
use crate::web::client::client_ip;
use crate::web::context::Services;

pub(crate) const PATH: &str = Purpose::PasswordReset.path();

const WORDS: PasswordLink = PasswordLink {
    purpose: Purpose::PasswordReset,
    heading: "Choose a new password",
    intro: "Choose a new password for your account. You will be signed out everywhere and then sign in with it.",
    button: "Set new password",
};

pub(crate) async fn form(query: web::Query<LinkQuery>, app: Services) -> Result<HttpResponse, PageError> {
    WORDS.show(query.into_inner().token, app.accounts()).await
}

pub(crate) async fn submit(
    req: HttpRequest,
    form: StrictForm<ChooseForm>,
    app: Services,
) -> Result<HttpResponse, PageError> {
    let user = match WORDS.choose(form.0, app.accounts(), client_ip(&req)).await? {
        Ok(user) => user,
        Err(page) => return Ok(page),
    };
    tracing::info!(event = "password_reset_by_link", username = %user.username, "password reset with a mailed link");
    let message =
        "Your password is changed, and every session of your account has ended. Sign in with your new password.";
    let mut response = redirect_with_flash(&app.cookies, "/login", message);
    // Whatever session this browser had is over: its cookies go.
    for cookie in app.cookies.signed_out() {
        response.add_cookie(&cookie).map_err(|error| PageError::Unexpected(error.into()))?;
    }
    Ok(response)
}
