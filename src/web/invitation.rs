//! `GET /invitation?token=…` and `POST /invitation`: an invited user chooses their password
//! and is signed in (then, if the policy requires it, sets up a second factor first: the
//! guard sends them there).
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::form::StrictForm;
use super::layout::{Layout, render};
use super::login::{seen_device, signed_in};
use super::view::{ChoosePasswordPage, LinkQuery, link_gone};
use crate::accounts::{AccountError, FieldErrors, check_new_password};
use crate::auth::client::{ClientInfo, client_ip};
use crate::auth::sessions::AMR_PASSWORD;
use crate::error::PageError;
use crate::mail::links::Purpose;
use crate::web::context::Services;

pub const PATH: &str = "/invitation";

#[derive(Deserialize)]
pub struct AcceptForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    new_password: String,
    #[serde(default)]
    confirm_password: String,
    #[serde(default, rename = "username")]
    _username: String,
}

fn page<'a>(token: &'a str, username: &'a str, errors: FieldErrors) -> ChoosePasswordPage<'a> {
    ChoosePasswordPage {
        layout: Layout::default(),
        heading: "Welcome! Choose your password",
        intro: "You were invited to an account here. Choose the password you will sign in with.",
        action: PATH,
        button: "Set password and sign in",
        token,
        username,
        errors,
    }
}

pub async fn form(query: web::Query<LinkQuery>, app: Services) -> Result<HttpResponse, PageError> {
    let token = query.into_inner().token;
    match app.accounts().link_owner(token.clone(), Purpose::Invitation).await {
        Ok(user) => render(StatusCode::OK, &page(&token, user.username.as_str(), FieldErrors::default())),
        Err(AccountError::Link(state)) => link_gone(Purpose::Invitation, &state),
        Err(error) => Err(error.into()),
    }
}

pub async fn submit(req: HttpRequest, form: StrictForm<AcceptForm>, app: Services) -> Result<HttpResponse, PageError> {
    let form = form.0;
    let user = match app.accounts().link_owner(form.token.clone(), Purpose::Invitation).await {
        Ok(user) => user,
        Err(AccountError::Link(state)) => return link_gone(Purpose::Invitation, &state),
        Err(error) => return Err(error.into()),
    };
    let mut errors = FieldErrors::default();
    let Some(password) = check_new_password(&user, &form.new_password, &form.confirm_password, &mut errors) else {
        return render(StatusCode::UNPROCESSABLE_ENTITY, &page(&form.token, user.username.as_str(), errors));
    };
    let hash = app.hasher.hash(&password).await?;
    let user = match app.accounts().accept_invitation(form.token, hash, client_ip(&req)).await {
        Ok(user) => user,
        Err(AccountError::Link(state)) => return link_gone(Purpose::Invitation, &state),
        Err(error) => return Err(error.into()),
    };
    let (user_id, presented) =
        (user.id, crate::auth::cookies::read(&req, app.cookies.device_name()).unwrap_or_default().to_owned());
    let device = seen_device(&app, &presented, user_id);
    let tokens = app.sessions.start(&app.pool, user, &ClientInfo::of(&req), "form", AMR_PASSWORD, device).await?;
    tracing::info!(event = "invitation_accepted", username = %tokens.authenticated.username, "invitation accepted; signed in");
    let credential = app.throttle.devices().issue(user_id, chrono::Utc::now().timestamp());
    Ok(signed_in(&app, tokens, "/dashboard", (&presented, user_id, credential)).finish())
}
