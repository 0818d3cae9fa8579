//! `GET /invitation?token=…` and `POST /invitation`: an invited user chooses their password
//! and is signed in (then, if the policy requires it, sets up a second factor first: the
//! guard sends them there).
use actix_web::{HttpRequest, HttpResponse, web};

use super::form::StrictForm;
use super::login::{seen_device, signed_in};
use super::view::{ChooseForm, LinkQuery, PasswordLink};
use crate::auth::client::{ClientInfo, client_ip};
use crate::auth::sessions::AMR_PASSWORD;
use crate::error::PageError;
use crate::mail::links::Purpose;
use crate::web::context::Services;

pub const PATH: &str = Purpose::Invitation.path();

const WORDS: PasswordLink = PasswordLink {
    purpose: Purpose::Invitation,
    heading: "Welcome! Choose your password",
    intro: "You were invited to an account here. Choose the password you will sign in with.",
    button: "Set password and sign in",
};

pub async fn form(query: web::Query<LinkQuery>, app: Services) -> Result<HttpResponse, PageError> {
    WORDS.show(query.into_inner().token, app.accounts()).await
}

pub async fn submit(req: HttpRequest, form: StrictForm<ChooseForm>, app: Services) -> Result<HttpResponse, PageError> {
    let (token, hash) = match WORDS.chosen(form.0, app.accounts(), &app.hasher).await? {
        Ok(chosen) => chosen,
        Err(page) => return Ok(page),
    };
    let user = match app.accounts().accept_invitation(token, hash, client_ip(&req)).await {
        Ok(user) => user,
        Err(error) => return WORDS.refusal(error),
    };
    let (user_id, presented) =
        (user.id, crate::auth::cookies::read(&req, app.cookies.device_name()).unwrap_or_default().to_owned());
    let device = seen_device(&app, &presented, user_id);
    let tokens = app.sessions.start(&app.pool, user, &ClientInfo::of(&req), "form", AMR_PASSWORD, device).await?;
    tracing::info!(event = "invitation_accepted", username = %tokens.authenticated.username, "invitation accepted; signed in");
    let credential = app.throttle.devices().issue(user_id, chrono::Utc::now().timestamp());
    Ok(signed_in(&app, tokens, "/dashboard", (&presented, user_id, credential))?.finish())
}
