//! `GET|POST /oauth2/logout` (OpenID Connect RP-Initiated Logout 1.0): an app sends its user
//! here to sign out of Portcullis. With an `id_token_hint` of the browser's own session the
//! sign-out happens at once; otherwise (the request cannot prove which app sent it) a
//! confirmation page asks first. Afterwards the browser goes to the app's registered
//! `post_logout_redirect_uri` (with `state`), never to an address not registered for it.
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::{Deserialize, Serialize};

use super::shared::{LOGOUT_PATH, hidden_fields, request_refused};
use crate::auth::Authenticated;
use crate::db::audit::Action;
use crate::db::sessions::Ending;
use crate::error::PageError;
use crate::oauth::Client;
use crate::oauth::flow::{IdClaims, app_session_id};
use crate::web::context::Services;
use crate::web::extractors::{CurrentUser, MaybeUser};
use crate::web::form::{CsrfForm, StrictForm};
use crate::web::layout::{Layout, render, see_other};

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub(crate) struct LogoutParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id_token_hint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    post_logout_redirect_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    state: Option<String>,
}

#[derive(Template)]
#[template(path = "oauth/logout.html")]
struct ConfirmPage {
    layout: Layout,
    app: Option<String>,
    hidden: Vec<(String, String)>,
}

/// A request whose app (if it named one) and address checked out.
struct Checked {
    client: Option<Client>,
    /// The registered address to go to afterwards, with `state`.
    then: Option<String>,
    /// The Portcullis session the hint's ID token was issued in (as apps see its id).
    hint_sid: Option<String>,
}

const MAX_PARAM_BYTES: usize = 4096;

async fn check(app: &Services, params: &LogoutParams) -> Result<Checked, String> {
    if [&params.id_token_hint, &params.client_id, &params.post_logout_redirect_uri, &params.state]
        .iter()
        .any(|value| value.as_ref().is_some_and(|value| value.len() > MAX_PARAM_BYTES))
    {
        return Err("The sign-out request is too long.".to_owned());
    }
    let hint = match params.id_token_hint.as_deref().filter(|hint| !hint.is_empty()) {
        None => None,
        Some(hint) => Some(
            app.sessions
                .keys()
                .verify_id_token::<IdClaims>(hint)
                .map_err(|_| "The app sent an ID token Portcullis did not issue.".to_owned())?,
        ),
    };
    let client_id = match (&hint, params.client_id.as_deref().filter(|id| !id.is_empty())) {
        (Some(hint), Some(named)) if hint.aud != named => {
            return Err("The app named itself differently from the ID token it sent.".to_owned());
        }
        (Some(hint), _) => Some(hint.aud.clone()),
        (None, named) => named.map(str::to_owned),
    };
    let client = match &client_id {
        None => None,
        Some(id) => match app.provider().find_client(id).await {
            Ok(Some(client)) => Some(client),
            Ok(None) => return Err("Portcullis does not know this app (an unknown client_id).".to_owned()),
            Err(error) => return Err(error.description),
        },
    };
    let then = match params.post_logout_redirect_uri.as_deref().filter(|uri| !uri.is_empty()) {
        None => None,
        Some(uri) => {
            let registered = client.as_ref().and_then(|client| client.post_logout_redirect_uri(uri));
            let Some(registered) = registered else {
                return Err(
                    "The app asked to return to an address that is not registered for it, so Portcullis will not send \
                     you there."
                        .to_owned(),
                );
            };
            let mut url = url::Url::parse(registered).map_err(|_| "The address cannot be used.".to_owned())?;
            if let Some(state) = params.state.as_deref() {
                url.query_pairs_mut().append_pair("state", state);
            }
            Some(url.to_string())
        }
    };
    Ok(Checked { client, then, hint_sid: hint.map(|hint| hint.sid) })
}

/// Ends the browser's session and goes on (to the app's address, or the sign-in page).
async fn sign_out(
    req: &HttpRequest,
    app: &Services,
    user: &Authenticated,
    then: Option<&str>,
) -> Result<HttpResponse, PageError> {
    let actor = user.actor(crate::web::client::client_ip(req));
    let target = (user.user_id, user.username.clone());
    app.accounts().end_sessions(actor, Ending::BySid(user.session_id.clone()), target, Action::Logout).await?;
    tracing::info!(event = "logout", username = %user.username, "signed out at an app's request");
    let mut response = see_other(then.unwrap_or("/login"));
    for cookie in app.cookies.signed_out() {
        response.cookie(cookie);
    }
    Ok(response.finish())
}

async fn start(
    req: HttpRequest,
    params: LogoutParams,
    visitor: Option<std::sync::Arc<Authenticated>>,
    app: Services,
) -> Result<HttpResponse, PageError> {
    let checked = match check(&app, &params).await {
        Ok(checked) => checked,
        Err(message) => return request_refused(&app, visitor.as_deref(), message),
    };
    let Some(user) = visitor else {
        // Signed out already: straight on.
        return Ok(see_other(checked.then.as_deref().unwrap_or("/login")).finish());
    };
    // The app proved it: an ID token it was given in this very session.
    if checked.hint_sid.as_deref() == Some(app_session_id(&user.session_id).as_str()) {
        return sign_out(&req, &app, &user, checked.then.as_deref()).await;
    }
    let hidden = hidden_fields(&params);
    let page = ConfirmPage {
        layout: Layout::for_user(&user, &app.csrf).at(LOGOUT_PATH),
        app: checked.client.map(|client| client.name),
        hidden,
    };
    let response = render(StatusCode::OK, &page)?;
    match checked.then.as_deref().and_then(|then| url::Url::parse(then).ok()) {
        Some(url) => Ok(crate::web::app_return::allow_posting_to(response, &app, &url.origin().ascii_serialization())),
        None => Ok(response),
    }
}

pub(crate) async fn start_get(
    req: HttpRequest,
    query: web::Query<LogoutParams>,
    visitor: MaybeUser,
    app: Services,
) -> Result<HttpResponse, PageError> {
    start(req, query.into_inner(), visitor.0, app).await
}

pub(crate) async fn start_post(
    req: HttpRequest,
    form: StrictForm<LogoutParams>,
    visitor: MaybeUser,
    app: Services,
) -> Result<HttpResponse, PageError> {
    start(req, form.0, visitor.0, app).await
}

/// `POST /oauth2/logout/confirm`: the confirmation page's button (the session's CSRF token).
pub(crate) async fn confirm(
    req: HttpRequest,
    form: CsrfForm<LogoutParams>,
    user: CurrentUser,
    app: Services,
) -> Result<HttpResponse, PageError> {
    let checked = match check(&app, &form.0).await {
        Ok(checked) => checked,
        Err(message) => return request_refused(&app, Some(&user), message),
    };
    sign_out(&req, &app, &user, checked.then.as_deref()).await
}
