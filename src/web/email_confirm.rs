//! `GET /email/confirm?token=…` and `POST /email/confirm`: a new address takes effect when
//! its owner follows the link sent to it. The page asks first (mail scanners open links).
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::flash::redirect_with_flash;
use super::form::StrictForm;
use super::layout::{Layout, render};
use super::mailed_links::{LinkQuery, link_gone};
use crate::accounts::AccountError;
use crate::error::PageError;
use crate::mail::links::Purpose;
use crate::web::client::client_ip;
use crate::web::context::Services;

#[derive(Template)]
#[template(path = "email_confirm.html")]
struct ConfirmPage<'a> {
    layout: Layout,
    token: &'a str,
    username: &'a str,
    address: &'a str,
}

#[derive(Deserialize)]
pub(crate) struct ConfirmForm {
    #[serde(default)]
    token: String,
}

pub(crate) async fn form(query: web::Query<LinkQuery>, app: Services) -> Result<HttpResponse, PageError> {
    let token = query.into_inner().token;
    match app.accounts().pending_email_change(token.clone()).await {
        Ok((user, address)) => {
            let page = ConfirmPage {
                layout: Layout::default(),
                token: &token,
                username: user.username.as_str(),
                address: &address,
            };
            render(StatusCode::OK, &page)
        }
        Err(AccountError::Link(state)) => link_gone(Purpose::EmailChange, &state),
        Err(error) => Err(error.into()),
    }
}

pub(crate) async fn submit(
    req: HttpRequest,
    form: StrictForm<ConfirmForm>,
    app: Services,
) -> Result<HttpResponse, PageError> {
    match app.accounts().confirm_email_change(form.0.token, client_ip(&req)).await {
        Ok(user) => {
            tracing::info!(event = "email_confirmed", username = %user.username, "new e-mail address confirmed");
            let message = format!("Your e-mail address is now {}.", user.email);
            Ok(redirect_with_flash(&app.cookies, "/account", &message))
        }
        Err(AccountError::Link(state)) => link_gone(Purpose::EmailChange, &state),
        // Taken by another account since the link was sent.
        Err(AccountError::Field((_, message))) => {
            Err(PageError::BadRequest(format!("{message}. Your address has not changed.")))
        }
        Err(error) => Err(error.into()),
    }
}
