//! `GET|POST /oauth2/authorize` and the consent page (`POST /oauth2/authorize/consent`):
//! OpenID Connect Core 3.1.2 with PKCE (RFC 7636) and `iss` in the answer (RFC 9207).
//!
//! An unknown app or a redirect URI not registered for it gets an error page here and is never
//! redirected to; every other error goes back to the app with `error`, `state` and `iss`.
//! A visitor who is not signed in goes through our own sign-in (second step, passkeys,
//! throttling and all) and comes back to the same request; `prompt=login` and `max_age` send a
//! signed-in user to "Confirm it is you" first.
use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::{Deserialize, Serialize};

use super::shared::{AUTHORIZE_PATH, CONSENT_PATH, hidden_fields, request_refused};
use crate::auth::Authenticated;
use crate::auth::csrf::CsrfKey;
use crate::error::PageError;
use crate::oauth::flow::{CodeRequest, IdClaims, is_s256_challenge};
use crate::oauth::{Client, OAuthError, Scopes};
use crate::web::context::{CONFIRM_PATH, Services};
use crate::web::extractors::{CurrentUser, MaybeUser};
use crate::web::form::{CsrfForm, StrictForm};
use crate::web::layout::{Layout, render, see_other};

/// Everything an authorization request may carry (OpenID Connect Core 3.1.2.1); unknown
/// parameters are ignored, as the specification asks.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub(crate) struct AuthorizeParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    response_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    redirect_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nonce: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    prompt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_age: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    login_hint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id_token_hint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    code_challenge: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    code_challenge_method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    response_mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    request: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    request_uri: Option<String>,
    /// RFC 8707: the resource (API, MCP server) the tokens are for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    resource: Option<String>,
    /// Ours: after "Confirm it is you" for `prompt=login`, the proof must be this recent
    /// (Unix time). Only ever makes the request stricter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    proved_after: Option<String>,
    /// Ours, never read from a request: these parameters are an app's pushed request
    /// (RFC 9126), found by `request_uri`.
    #[serde(skip)]
    pushed: bool,
}

/// The consent page's answer, with the request it answers.
#[derive(Deserialize)]
pub(crate) struct ConsentForm {
    #[serde(default)]
    decision: String,
    #[serde(flatten)]
    params: AuthorizeParams,
}

#[derive(Template)]
#[template(path = "oauth/consent.html")]
struct ConsentPage {
    layout: Layout,
    app: String,
    username: String,
    lines: Vec<&'static str>,
    hidden: Vec<(String, String)>,
}

/// A request that named a known app and one of its redirect URIs: errors now go back there.
struct Checked {
    client: Client,
    redirect_uri: String,
    state: Option<String>,
    scopes: Scopes,
    nonce: Option<String>,
    code_challenge: Option<String>,
    prompt: Vec<String>,
    max_age: Option<i64>,
    proved_after: Option<i64>,
    login_hint: Option<String>,
    hint_subject: Option<String>,
    resource: Option<String>,
}

enum Refused {
    /// Shown here: the app or its address cannot be trusted with a redirect.
    Page(String),
    /// Returned to the app.
    ToApp { redirect_uri: String, state: Option<String>, error: OAuthError },
}

const MAX_PARAM_BYTES: usize = 2048;

async fn check(app: &Services, params: &AuthorizeParams) -> Result<Checked, Refused> {
    let page = |message: &str| Refused::Page(message.to_owned());
    if [&params.client_id, &params.redirect_uri, &params.state, &params.nonce, &params.scope, &params.login_hint]
        .iter()
        .any(|value| value.as_ref().is_some_and(|value| value.len() > MAX_PARAM_BYTES))
    {
        return Err(page("The sign-in request is too long."));
    }
    let Some(client_id) = params.client_id.as_deref().filter(|id| !id.is_empty()) else {
        return Err(page("The app did not say who it is (client_id is missing)."));
    };
    let client = match app.provider().find_client(client_id).await {
        Ok(Some(client)) if client.enabled => client,
        Ok(Some(_)) => return Err(page("This app is disabled. Ask your administrator.")),
        Ok(None) => return Err(page("Portcullis does not know this app (an unknown client_id).")),
        Err(error) => return Err(page(&error.description)),
    };
    let Some(redirect_uri) = params.redirect_uri.as_deref().filter(|uri| client.redirect_uri(uri).is_some()) else {
        return Err(page(
            "The app asked to return to an address that is not registered for it, so Portcullis will not send you there.",
        ));
    };
    let to_app = |error: &'static str, description: &str| Refused::ToApp {
        redirect_uri: redirect_uri.to_owned(),
        state: params.state.clone(),
        error: OAuthError::new(error, description),
    };
    if params.request.is_some() {
        return Err(to_app("request_not_supported", "Request objects are not supported"));
    }
    if params.request_uri.is_some() && !params.pushed {
        return Err(to_app("invalid_request_uri", "request_uri names no request this app pushed"));
    }
    if client.require_pushed_requests && !params.pushed {
        return Err(to_app("invalid_request", "This app must push its sign-in requests first (PAR, RFC 9126)"));
    }
    match params.response_type.as_deref() {
        None | Some("") => return Err(to_app("invalid_request", "response_type is missing")),
        Some("code") => {}
        Some(_) => return Err(to_app("unsupported_response_type", "Only response_type=code is supported")),
    }
    if params.response_mode.as_deref().is_some_and(|mode| mode != "query") {
        return Err(to_app("invalid_request", "Only response_mode=query is supported"));
    }
    let asked = Scopes::parse(params.scope.as_deref().unwrap_or_default());
    let scopes = asked.within(&client.scopes);
    if scopes.is_empty() {
        return Err(to_app("invalid_scope", "Ask for at least one scope this app may have (openid)"));
    }
    let code_challenge = match (params.code_challenge.as_deref(), params.code_challenge_method.as_deref()) {
        (None, None) if client.is_confidential() => None,
        (None, _) => return Err(to_app("invalid_request", "This app must use PKCE (code_challenge with S256)")),
        (Some(challenge), Some("S256")) if is_s256_challenge(challenge) => Some(challenge.to_owned()),
        (Some(_), Some("S256")) => return Err(to_app("invalid_request", "code_challenge is not an S256 challenge")),
        (Some(_), _) => return Err(to_app("invalid_request", "Only code_challenge_method=S256 is supported")),
    };
    let prompt: Vec<String> =
        params.prompt.as_deref().unwrap_or_default().split_whitespace().map(str::to_owned).collect();
    if prompt.iter().any(|value| !["none", "login", "consent", "select_account"].contains(&value.as_str())) {
        return Err(to_app("invalid_request", "prompt may be none, login, consent or select_account"));
    }
    if prompt.iter().any(|value| value == "none") && prompt.len() > 1 {
        return Err(to_app("invalid_request", "prompt=none cannot be combined with other values"));
    }
    let max_age = match params.max_age.as_deref() {
        None | Some("") => None,
        Some(raw) => match raw.parse::<i64>() {
            Ok(seconds) if seconds >= 0 => Some(seconds),
            _ => return Err(to_app("invalid_request", "max_age must be a number of seconds")),
        },
    };
    let resource = match params.resource.as_deref().filter(|resource| !resource.is_empty()) {
        None => None,
        Some(resource) => match crate::oauth::flow::check_resource(resource) {
            Ok(resource) => Some(resource),
            Err(message) => return Err(to_app("invalid_target", message)),
        },
    };
    let hint_subject = match params.id_token_hint.as_deref().filter(|hint| !hint.is_empty()) {
        None => None,
        Some(hint) => match app.sessions.keys().verify_id_token::<IdClaims>(hint) {
            Ok(claims) => Some(claims.sub),
            Err(_) => return Err(to_app("invalid_request", "id_token_hint is not an ID token Portcullis issued")),
        },
    };
    Ok(Checked {
        client,
        redirect_uri: redirect_uri.to_owned(),
        state: params.state.clone(),
        scopes,
        nonce: params.nonce.clone().filter(|nonce| !nonce.is_empty()),
        code_challenge,
        prompt,
        max_age,
        proved_after: params.proved_after.as_deref().and_then(|raw| raw.parse().ok()),
        login_hint: params.login_hint.clone().filter(|hint| !hint.is_empty()),
        hint_subject,
        resource,
    })
}

/// Where the app gets its answer: the redirect URI with `extra`, `state` and `iss` added to
/// whatever query it has.
fn back_to_app(app: &Services, redirect_uri: &str, state: Option<&str>, extra: &[(&str, &str)]) -> HttpResponse {
    let mut url = match url::Url::parse(redirect_uri) {
        Ok(url) => url,
        Err(_) => return see_other("/").finish(),
    };
    {
        let mut query = url.query_pairs_mut();
        for (name, value) in extra {
            query.append_pair(name, value);
        }
        if let Some(state) = state {
            query.append_pair("state", state);
        }
        query.append_pair("iss", app.sessions.keys().issuer());
    }
    see_other(url.as_str()).finish()
}

fn refused(app: &Services, visitor: Option<&Authenticated>, refusal: Refused) -> Result<HttpResponse, PageError> {
    match refusal {
        Refused::Page(message) => request_refused(app, visitor, message),
        Refused::ToApp { redirect_uri, state, error } => Ok(back_to_app(
            app,
            &redirect_uri,
            state.as_deref(),
            &[("error", error.error), ("error_description", &error.description)],
        )),
    }
}

const PUSHED_GONE: &str =
    "This sign-in request has expired or was used already. Go back to the app and sign in from there again.";

/// A request that names a pushed one (`client_id` and `request_uri`, RFC 9126 §4): the pushed
/// parameters, with what we add on coming back after signing in (`prompt`, `max_age`,
/// `proved_after`, which only ever make it stricter or record a proof just given).
async fn resolve_pushed(app: &Services, incoming: AuthorizeParams) -> Result<AuthorizeParams, Refused> {
    let Some(request_uri) = incoming.request_uri.clone().filter(|uri| !uri.is_empty()) else { return Ok(incoming) };
    let Some(client_id) = incoming.client_id.clone().filter(|id| !id.is_empty()) else {
        return Err(Refused::Page("The app did not say who it is (client_id is missing).".to_owned()));
    };
    let pushed = app
        .provider()
        .pushed_request(&client_id, &request_uri)
        .await
        .map_err(|error| Refused::Page(error.description))?;
    let Some(mut params) = pushed.and_then(|json| serde_json::from_str::<AuthorizeParams>(&json).ok()) else {
        return Err(Refused::Page(PUSHED_GONE.to_owned()));
    };
    params.pushed = true;
    params.client_id = Some(client_id);
    params.request_uri = Some(request_uri);
    if incoming.proved_after.is_some() {
        params.prompt = incoming.prompt;
        params.max_age = incoming.max_age;
        params.proved_after = incoming.proved_after;
    }
    Ok(params)
}

/// `POST /oauth2/par` (RFC 9126): an app pushes its authorization request from its server,
/// authenticated like at the token endpoint, and gets a `request_uri` for the browser. The
/// request is checked now, exactly as `/oauth2/authorize` would check it.
pub(crate) async fn push(req: HttpRequest, body: web::Bytes, app: Services) -> HttpResponse {
    use super::shared::{client_credentials, error_response, form_fields, no_store};
    let pushed = async {
        let fields = form_fields(&req, &body)?;
        if fields.contains_key("request_uri") {
            return Err(OAuthError::new("invalid_request", "request_uri cannot be pushed"));
        }
        let credentials = client_credentials(&req, &fields)?;
        let provider = app.provider();
        let client = provider.authenticate_client(&credentials, &crate::web::client::client_ip(&req)).await?;
        let query = serde_urlencoded::to_string(&fields)
            .map_err(|_| OAuthError::new("invalid_request", "The form could not be read"))?;
        let mut params: AuthorizeParams = serde_urlencoded::from_str(&query)
            .map_err(|_| OAuthError::new("invalid_request", "The form could not be read"))?;
        params.client_id = Some(client.client_id.clone());
        params.pushed = true;
        match check(&app, &params).await {
            Ok(_) => {}
            Err(Refused::Page(message)) => return Err(OAuthError::new("invalid_request", message)),
            Err(Refused::ToApp { error, .. }) => return Err(error),
        }
        let json = serde_json::to_string(&params).map_err(|error| OAuthError::server_error(&error.into()))?;
        let request_uri = provider.push_request(&client, json).await?;
        Ok(request_uri)
    };
    match pushed.await {
        Ok(request_uri) => {
            let mut response = HttpResponse::Created();
            no_store(&mut response);
            response.json(serde_json::json!({
                "request_uri": request_uri,
                "expires_in": crate::oauth::flow::PUSHED_REQUEST_TTL.as_secs(),
            }))
        }
        Err(error) => error_response(&error),
    }
}

/// The request again as an address of ours, `change`d (for coming back after signing in).
fn again(params: &AuthorizeParams, change: impl FnOnce(&mut AuthorizeParams)) -> Option<String> {
    let mut params = params.clone();
    change(&mut params);
    if params.pushed {
        // The browser carries only the reference (and what we changed), never the request.
        params = AuthorizeParams {
            client_id: params.client_id,
            request_uri: params.request_uri,
            prompt: params.prompt,
            max_age: params.max_age,
            proved_after: params.proved_after,
            ..AuthorizeParams::default()
        };
    }
    let query = serde_urlencoded::to_string(&params).ok()?;
    let path = format!("{AUTHORIZE_PATH}?{query}");
    crate::domain::SafeNextPath::parse(&path).map(|path| path.as_str().to_owned())
}

pub(crate) async fn start_get(
    req: HttpRequest,
    query: web::Query<AuthorizeParams>,
    visitor: MaybeUser,
    app: Services,
) -> Result<HttpResponse, PageError> {
    decide(&req, query.into_inner(), visitor.0, &app, false).await
}

pub(crate) async fn start_post(
    req: HttpRequest,
    form: StrictForm<AuthorizeParams>,
    visitor: MaybeUser,
    app: Services,
) -> Result<HttpResponse, PageError> {
    decide(&req, form.0, visitor.0, &app, false).await
}

/// The consent page's answer: allowed, the code goes to the app; denied, `access_denied`.
pub(crate) async fn consent(
    req: HttpRequest,
    user: CurrentUser,
    form: CsrfForm<ConsentForm>,
    app: Services,
) -> Result<HttpResponse, PageError> {
    let ConsentForm { decision, params } = form.0;
    let visitor = Some(user.shared());
    if decision != "allow" {
        let params = match resolve_pushed(&app, params).await {
            Ok(params) => params,
            Err(refusal) => return refused(&app, visitor.as_deref(), refusal),
        };
        return match check(&app, &params).await {
            Ok(checked) => Ok(back_to_app(
                &app,
                &checked.redirect_uri,
                checked.state.as_deref(),
                &[("error", "access_denied"), ("error_description", "The user did not allow it")],
            )),
            Err(refusal) => refused(&app, visitor.as_deref(), refusal),
        };
    }
    decide(&req, params, visitor, &app, true).await
}

async fn decide(
    req: &HttpRequest,
    params: AuthorizeParams,
    visitor: Option<Arc<Authenticated>>,
    app: &Services,
    consented: bool,
) -> Result<HttpResponse, PageError> {
    let params = match resolve_pushed(app, params).await {
        Ok(params) => params,
        Err(refusal) => return refused(app, visitor.as_deref(), refusal),
    };
    let checked = match check(app, &params).await {
        Ok(checked) => checked,
        Err(refusal) => return refused(app, visitor.as_deref(), refusal),
    };
    let to_app = |error: &'static str, description: &str| {
        Ok(back_to_app(
            app,
            &checked.redirect_uri,
            checked.state.as_deref(),
            &[("error", error), ("error_description", description)],
        ))
    };
    let silent = checked.prompt.iter().any(|value| value == "none");
    // Signed in, but with something to do first: that page (the guard allows nothing else).
    if let Some(user) = visitor.as_ref().filter(|user| user.must_change_password || user.must_enrol) {
        if silent {
            return to_app("interaction_required", "The user must finish setting up their account first");
        }
        let first = if user.must_change_password { "/password/change" } else { "/account/security" };
        return Ok(see_other(first).finish());
    }
    // Our own sign-in, then back here (without prompt=login: the sign-in is the login).
    let to_sign_in = || {
        let Some(next) = again(&params, |params| {
            params.prompt =
                params.prompt.take().map(|prompt| prompt.replace("login", "")).filter(|p| !p.trim().is_empty());
            // The sign-in about to happen is the proof `max_age` and `prompt=login` ask for.
            if checked.max_age.is_some() || checked.prompt.iter().any(|value| value == "login") {
                params.max_age = None;
                params.proved_after = Some(chrono::Utc::now().timestamp().to_string());
            }
        }) else {
            return to_app("invalid_request", "The request is too long to come back to after signing in");
        };
        let mut query = vec![("next", next.as_str())];
        if let Some(hint) = checked.login_hint.as_deref() {
            query.push(("login_hint", hint));
        }
        Ok(see_other(&format!("/login?{}", serde_urlencoded::to_string(&query).unwrap_or_default())).finish())
    };
    let Some(user) = visitor else {
        if silent {
            return to_app("login_required", "The user is not signed in");
        }
        return to_sign_in();
    };
    if checked.hint_subject.as_ref().is_some_and(|sub| *sub != user.user_id.to_string()) && silent {
        return to_app("login_required", "Someone else is signed in");
    }
    let now = chrono::Utc::now().timestamp();
    let too_old = checked.max_age.is_some_and(|max_age| user.auth_time + max_age < now)
        || checked.proved_after.is_some_and(|after| user.auth_time < after)
        || checked.prompt.iter().any(|value| value == "login");
    if too_old {
        if silent {
            return to_app("login_required", "The user must sign in again");
        }
        let Some(next) = again(&params, |params| {
            params.prompt =
                params.prompt.take().map(|prompt| prompt.replace("login", "")).filter(|p| !p.trim().is_empty());
            params.max_age = None;
            params.proved_after = Some(now.to_string());
        }) else {
            return to_app("invalid_request", "The request is too long to come back to after signing in");
        };
        let query = serde_urlencoded::to_string([("next", next.as_str())]).unwrap_or_default();
        return Ok(see_other(&format!("{CONFIRM_PATH}?{query}")).finish());
    }
    let groups = if user.groups_truncated {
        let user_id = user.user_id;
        crate::db::run(&app.pool, move |conn| -> anyhow::Result<Vec<String>> {
            Ok(crate::db::groups::groups_of(conn, user_id)?.into_iter().map(|group| group.name.to_string()).collect())
        })
        .await?
    } else {
        user.groups.clone()
    };
    if !checked.client.admits(user.role, &groups) {
        return to_app("access_denied", "This user may not use this app");
    }
    let provider = app.provider();
    let asks_consent = checked.prompt.iter().any(|value| value == "consent");
    let needs_consent = !consented
        && (asks_consent
            || (checked.client.ask_consent
                && !provider
                    .has_consent(user.user_id, &checked.client, &checked.scopes)
                    .await
                    .map_err(oauth_page_error)?));
    if needs_consent {
        if silent {
            return to_app("consent_required", "The user has not allowed this app yet");
        }
        return consent_page(app, &user, &checked, &params);
    }
    let request = CodeRequest {
        client: &checked.client,
        user_id: user.user_id,
        session_id: &user.session_id,
        redirect_uri: &checked.redirect_uri,
        scopes: &checked.scopes,
        nonce: checked.nonce.as_deref(),
        code_challenge: checked.code_challenge.as_deref(),
        auth_time: user.auth_time,
        amr: &user.amr,
        resource: checked.resource.as_deref(),
    };
    let actor = user.actor(crate::web::client::client_ip(req));
    if let Some(request_uri) = params.request_uri.as_deref().filter(|_| params.pushed) {
        // A pushed request leads to one code.
        if !provider.use_pushed_request(request_uri).await.map_err(oauth_page_error)? {
            return refused(app, Some(&user), Refused::Page(PUSHED_GONE.to_owned()));
        }
    }
    match provider.issue_code(&request, consented, actor).await {
        Ok(code) => Ok(back_to_app(app, &checked.redirect_uri, checked.state.as_deref(), &[("code", &code)])),
        Err(error) if error.error == "server_error" || error.error == "temporarily_unavailable" => {
            Err(oauth_page_error(error))
        }
        // The session ended a moment ago (its token not yet refused everywhere): signed out, so
        // the sign-in page, and the browser drops the token.
        Err(error) if error.error == "login_required" && !silent => {
            let mut response = to_sign_in()?;
            for cookie in app.cookies.signed_out() {
                response.add_cookie(&cookie).map_err(|error| PageError::Unexpected(error.into()))?;
            }
            Ok(response)
        }
        Err(error) => to_app(error.error, &error.description),
    }
}

fn oauth_page_error(error: OAuthError) -> PageError {
    if error.error == "temporarily_unavailable" {
        return PageError::Unavailable(anyhow::anyhow!("{}", error.description));
    }
    PageError::Unexpected(anyhow::anyhow!("{}: {}", error.error, error.description))
}

fn consent_page(
    app: &Services,
    user: &Authenticated,
    checked: &Checked,
    params: &AuthorizeParams,
) -> Result<HttpResponse, PageError> {
    let hidden = hidden_fields(params).into_iter().filter(|(name, _)| name != "prompt").collect();
    let page = ConsentPage {
        layout: layout_for(user, &app.csrf),
        app: checked.client.name.clone(),
        username: user.username.clone(),
        lines: checked.scopes.in_words(),
        hidden,
    };
    let response = render(StatusCode::OK, &page)?;
    // Allowing posts on to the app's address (checked above).
    match url::Url::parse(&checked.redirect_uri) {
        Ok(url) => Ok(crate::web::app_return::allow_posting_to(response, app, &url.origin().ascii_serialization())),
        Err(_) => Ok(response),
    }
}

fn layout_for(user: &Authenticated, csrf: &CsrfKey) -> Layout {
    Layout::for_user(user, csrf).at(CONSENT_PATH)
}
