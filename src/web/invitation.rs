//! `GET /invitation?token=…` and `POST /invitation`: an invited user chooses their password
//! and is signed in (then, if the policy requires it, sets up a second factor first: the
//! guard sends them there).
use actix_web::{HttpRequest, HttpResponse, web};

use super::form::StrictForm;
use super::mailed_links::{ChooseForm, LinkQuery, PasswordLink};
use super::signed_in;
use crate::auth::sign_in::{Method, Proven};
use crate::error::PageError;
use crate::mail::links::Purpose;
use crate::web::client::client_ip;
use crate::web::context::Services;

pub(crate) const PATH: &str = Purpose::Invitation.path();

const WORDS: PasswordLink = PasswordLink {
    purpose: Purpose::Invitation,
    heading: "Welcome! Choose your password",
    intro: "You were invited to an account here. Choose the password you will sign in with.",
    button: "Set password and sign in",
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
    tracing::info!(event = "invitation_accepted", username = %user.username, "invitation accepted; signing in");
    let signed =
        signed_in::start(&app, &req, Proven { user, method: Method::Password, device_credential: None }).await?;
    Ok(signed_in::redirect(&app, signed, "/dashboard")?.finish())
}
