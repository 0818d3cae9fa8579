//! `/admin/apps/**`: the apps that sign in through Portcullis (OpenID Connect clients): the
//! list, adding one (its secret shown once), its page (what to paste into the app), editing,
//! disabling, a new secret, and deleting with a confirmation. Every change is one call into
//! `oauth::clients`, audited there.
use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use askama::Template;
use serde::Deserialize;

use crate::accounts::FieldErrors;
use crate::config::DynamicRegistration;
use crate::db::logout_deliveries::{self, DeliveryRow};
use crate::db::{self, oauth as store};
use crate::error::PageError;
use crate::oauth::clients::{self, ClientError};
use crate::oauth::{Client, ClientForm, ValidClient};
use crate::web::context::Page;
use crate::web::flash::Flash;
use crate::web::form::{CsrfForm, NoFields};
use crate::web::layout::{Layout, render};
use crate::web::params::AppId;
use crate::web::time_words::{Clock, When};

fn app_page(id: i64) -> String {
    format!("/admin/apps/{id}")
}

impl From<ClientError> for PageError {
    fn from(error: ClientError) -> Self {
        match error {
            ClientError::NotFound => PageError::NotFound,
            ClientError::Database(error) => PageError::from(anyhow::Error::new(error)),
        }
    }
}

#[derive(Template)]
#[template(path = "admin/apps/list.html")]
struct AppsPage {
    layout: Layout,
    apps: Vec<Client>,
    issuer: String,
    /// `PORTCULLIS_DYNAMIC_REGISTRATION` in words; `None`: off.
    registration: Option<&'static str>,
    /// Registration tokens that still work: (made, by, until, uses left).
    tokens: Vec<(When, String, When, i32)>,
}

/// `GET /admin/apps`: the apps (those waiting for approval first), and, when apps may register
/// themselves, the registration tokens that still work.
pub(crate) async fn list(page: Page, flash: Flash) -> Result<HttpResponse, PageError> {
    let (rows, tokens) = db::run(&page.pool, |conn| -> anyhow::Result<_> {
        Ok((store::list_clients(conn)?, store::live_registration_tokens(conn, db::users::now())?))
    })
    .await?;
    let mut apps: Vec<Client> = rows.into_iter().filter_map(Client::from_row).collect();
    apps.sort_by_key(|app| app.registration != "waiting");
    let clock = page.clock();
    let registration = match **page.registration {
        DynamicRegistration::Off => None,
        DynamicRegistration::Token => Some("with a registration token"),
        DynamicRegistration::Approval => Some("with a registration token, or waiting for your approval without one"),
    };
    let view = AppsPage {
        layout: page.layout().with_flash(&flash),
        apps,
        issuer: page.sessions.keys().issuer().to_owned(),
        registration,
        tokens: tokens
            .into_iter()
            .map(|token| (clock.ago(token.created_at), token.made_by, clock.ago(token.expires_at), token.uses_left))
            .collect(),
    };
    Ok(flash.finish(render(StatusCode::OK, &view)?))
}

#[derive(Deserialize)]
pub(crate) struct TokenFields {
    #[serde(default)]
    days: String,
    #[serde(default)]
    uses: String,
}

#[derive(Template)]
#[template(path = "admin/apps/registration_token.html")]
struct TokenPage {
    layout: Layout,
    token: String,
    until: String,
    uses: i32,
    endpoint: String,
}

/// `POST /admin/apps/registration-tokens`: a new initial access token, shown once.
pub(crate) async fn issue_registration_token(
    page: Page,
    form: CsrfForm<TokenFields>,
) -> Result<HttpResponse, PageError> {
    let days = form.0.days.trim().parse::<u64>().ok().filter(|days| (1..=365).contains(days));
    let uses = form.0.uses.trim().parse::<i32>().ok().filter(|uses| (1..=10_000).contains(uses));
    let (Some(days), Some(uses)) = (days, uses) else {
        return Ok(page.redirect(
            "/admin/apps",
            "A registration token lives 1 to 365 days and allows 1 to 10,000 registrations; nothing was made.",
        ));
    };
    let actor = page.actor();
    let (token, until) = db::run(&page.pool, move |conn| {
        crate::oauth::registration::issue_token(conn, &actor, std::time::Duration::from_secs(days * 86_400), uses)
    })
    .await?;
    let view = TokenPage {
        layout: page.layout(),
        token,
        until: page.clock().exact(until),
        uses,
        endpoint: format!("{}/oauth2/register", page.sessions.keys().issuer()),
    };
    render(StatusCode::OK, &view)
}

/// `POST /admin/apps/{app}/approve`: an app that registered itself without a token may sign
/// people in from now on.
pub(crate) async fn approve(
    page: Page,
    AppId(id): AppId,
    _form: CsrfForm<NoFields>,
) -> Result<HttpResponse, PageError> {
    let actor = page.actor();
    let approved = db::run(&page.pool, move |conn| crate::oauth::registration::approve(conn, &actor, id)).await?;
    let message =
        if approved { "Approved: the app can sign people in now." } else { "That app was not waiting for approval." };
    Ok(page.redirect(&app_page(id), message))
}

/// The form as posted: checkboxes are absent when unticked.
#[derive(Deserialize, Default)]
pub(crate) struct AppFields {
    #[serde(default)]
    name: String,
    #[serde(default)]
    redirect_uris: String,
    #[serde(default)]
    post_logout_redirect_uris: String,
    #[serde(default)]
    backchannel_logout_uri: String,
    #[serde(default)]
    require_pushed_requests: Option<String>,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    scopes: String,
    #[serde(default)]
    ask_consent: Option<String>,
    #[serde(default)]
    admins_only: Option<String>,
    #[serde(default)]
    allowed_groups: String,
    #[serde(default)]
    id_token_alg: String,
    #[serde(default)]
    access_token_minutes: String,
    #[serde(default)]
    refresh_token_days: String,
}

impl AppFields {
    fn form(&self, errors: &mut FieldErrors) -> ClientForm {
        let number = |raw: &str, field: &'static str, unit: i64, errors: &mut FieldErrors| -> i64 {
            match raw.trim() {
                "" => 0,
                raw => raw.parse::<i64>().ok().filter(|n| *n > 0).map_or_else(
                    || {
                        errors.add(field, "Enter a whole number");
                        0
                    },
                    |n| n.saturating_mul(unit),
                ),
            }
        };
        ClientForm {
            name: self.name.clone(),
            redirect_uris: self.redirect_uris.clone(),
            post_logout_redirect_uris: self.post_logout_redirect_uris.clone(),
            backchannel_logout_uri: self.backchannel_logout_uri.clone(),
            require_pushed_requests: self.require_pushed_requests.is_some(),
            public: self.kind == "public",
            scopes: self.scopes.clone(),
            ask_consent: self.ask_consent.is_some(),
            allowed_roles: if self.admins_only.is_some() { vec!["admin".to_owned()] } else { Vec::new() },
            allowed_groups: self.allowed_groups.clone(),
            id_token_alg: self.id_token_alg.clone(),
            access_token_seconds: number(&self.access_token_minutes, "access_token_seconds", 60, errors),
            refresh_token_seconds: number(&self.refresh_token_days, "refresh_token_seconds", 86_400, errors),
        }
    }

    fn of(form: &ClientForm) -> Self {
        Self {
            name: form.name.clone(),
            redirect_uris: form.redirect_uris.clone(),
            post_logout_redirect_uris: form.post_logout_redirect_uris.clone(),
            backchannel_logout_uri: form.backchannel_logout_uri.clone(),
            require_pushed_requests: form.require_pushed_requests.then(String::new),
            kind: if form.public { "public".into() } else { "confidential".into() },
            scopes: form.scopes.clone(),
            ask_consent: form.ask_consent.then(String::new),
            admins_only: form.allowed_roles.iter().any(|role| role == "admin").then(String::new),
            allowed_groups: form.allowed_groups.clone(),
            id_token_alg: form.id_token_alg.clone(),
            access_token_minutes: (form.access_token_seconds / 60).to_string(),
            refresh_token_days: (form.refresh_token_seconds / 86_400).to_string(),
        }
    }
}

#[derive(Template)]
#[template(path = "admin/apps/form.html")]
struct AppFormPage {
    layout: Layout,
    /// `None`: a new app.
    app: Option<Client>,
    form: AppFields,
    errors: FieldErrors,
    access_hint: String,
}

fn max_access_seconds(page: &Page) -> i64 {
    i64::try_from(page.sessions.policy().access_token_ttl.as_secs()).unwrap_or(i64::MAX)
}

fn form_page(
    page: &Page,
    app: Option<Client>,
    form: AppFields,
    errors: FieldErrors,
) -> Result<HttpResponse, PageError> {
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    let max = max_access_seconds(page) / 60;
    let access_hint = format!("At most {max}, the lifetime of Portcullis's own access tokens. Empty: {max}");
    render(status, &AppFormPage { layout: page.layout(), app, form, errors, access_hint })
}

fn checked(page: &Page, fields: &AppFields) -> Result<ValidClient, FieldErrors> {
    let mut errors = FieldErrors::default();
    let form = fields.form(&mut errors);
    match ValidClient::parse(&form, max_access_seconds(page)) {
        Ok(valid) if errors.is_empty() => Ok(valid),
        Ok(_) => Err(errors),
        Err(more) => {
            errors.0.extend(more.0);
            Err(errors)
        }
    }
}

#[derive(Template)]
#[template(path = "admin/apps/secret.html")]
struct SecretPage {
    layout: Layout,
    app: Client,
    secret: Option<String>,
    issuer: String,
    created: bool,
}

/// `GET /admin/apps/new`.
pub(crate) async fn new_form(page: Page) -> Result<HttpResponse, PageError> {
    let fields = AppFields { kind: "confidential".into(), ..AppFields::default() };
    form_page(&page, None, fields, FieldErrors::default())
}

/// `POST /admin/apps/new`: the new app's id and secret, shown once.
pub(crate) async fn create(page: Page, form: CsrfForm<AppFields>) -> Result<HttpResponse, PageError> {
    let fields = form.0;
    let valid = match checked(&page, &fields) {
        Ok(valid) => valid,
        Err(errors) => return form_page(&page, None, fields, errors),
    };
    let actor = page.actor();
    let created =
        db::run(&page.pool, move |conn| -> anyhow::Result<_> { Ok(clients::create(conn, &actor, &valid)?) }).await?;
    let app = Client::from_row(created.client).ok_or(PageError::NotFound)?;
    let issuer = page.sessions.keys().issuer().to_owned();
    render(StatusCode::OK, &SecretPage { layout: page.layout(), app, secret: created.secret, issuer, created: true })
}

async fn load(page: &Page, AppId(id): AppId) -> Result<Client, PageError> {
    let row = db::run(&page.pool, move |conn| -> anyhow::Result<_> { Ok(store::find_client(conn, id)?) }).await?;
    row.and_then(Client::from_row).ok_or(PageError::NotFound)
}

#[derive(Template)]
#[template(path = "admin/apps/detail.html")]
struct AppPage {
    layout: Layout,
    app: Client,
    issuer: String,
    /// Sessions signed in to it now (at most [`SHOWN`]), and how many there are.
    sessions: Vec<AppSession>,
    session_count: i64,
    /// Sign-outs sent to it: waiting, failing (of those waiting), delivered, given up; the newest.
    logouts: (i64, i64, i64, i64),
    deliveries: Vec<DeliveryLine>,
}

/// How many sessions and deliveries an app's page lists.
const SHOWN: i64 = 50;

/// A session signed in to the app.
struct AppSession {
    user_id: i64,
    username: String,
    display_name: String,
    signed_in: When,
    last_used: When,
}

/// A sign-out sent (or being sent) to the app.
struct DeliveryLine {
    created: When,
    user_id: i64,
    state: String,
    /// `ok`, `waiting`, `failing` or `failed`, for the tag's colour.
    tone: &'static str,
    attempts: i32,
    last_error: String,
}

fn delivery_line(row: DeliveryRow, now: chrono::NaiveDateTime, clock: &Clock) -> DeliveryLine {
    let (state, tone) = if let Some(at) = row.delivered_at {
        (format!("Delivered {}", clock.ago(at).text), "ok")
    } else if let Some(at) = row.failed_at {
        (format!("Given up {}", clock.ago(at).text), "failed")
    } else if row.claimed_until.is_some_and(|until| until > now) {
        ("Being sent".to_owned(), "waiting")
    } else if row.last_error.is_some() {
        (format!("Failing; next try {}", clock.ago(row.next_attempt_at).text), "failing")
    } else {
        ("Waiting".to_owned(), "waiting")
    };
    DeliveryLine {
        created: clock.ago(row.created_at),
        user_id: row.user_id,
        state,
        tone,
        attempts: row.attempts,
        last_error: row.last_error.unwrap_or_default(),
    }
}

/// `GET /admin/apps/{app}`: its settings, the sessions signed in to it, and the sign-outs sent to it.
pub(crate) async fn show(page: Page, id: AppId, flash: Flash) -> Result<HttpResponse, PageError> {
    let app = load(&page, id).await?;
    let issuer = page.sessions.keys().issuer().to_owned();
    let key = app.id;
    let (sessions, session_count, logouts, deliveries) = db::run(&page.pool, move |conn| -> anyhow::Result<_> {
        Ok((
            store::sessions_of_client(conn, key, SHOWN)?,
            store::count_sessions_of_client(conn, key)?,
            logout_deliveries::counts_for_client(conn, key)?,
            logout_deliveries::recent_for_client(conn, key, SHOWN)?,
        ))
    })
    .await?;
    let (now, clock) = (db::users::now(), page.clock());
    let view = AppPage {
        layout: page.layout().with_flash(&flash),
        app,
        issuer,
        sessions: sessions
            .into_iter()
            .filter_map(|(grant, username, display_name)| {
                Some(AppSession {
                    user_id: grant.user_id?,
                    username,
                    display_name,
                    signed_in: clock.ago(grant.created_at),
                    last_used: clock.ago(grant.last_used_at),
                })
            })
            .collect(),
        session_count,
        logouts,
        deliveries: deliveries.into_iter().map(|row| delivery_line(row, now, &clock)).collect(),
    };
    Ok(flash.finish(render(StatusCode::OK, &view)?))
}

/// `GET /admin/apps/{app}/edit`.
pub(crate) async fn edit_form(page: Page, id: AppId) -> Result<HttpResponse, PageError> {
    let app = load(&page, id).await?;
    let fields = AppFields::of(&clients::form_of(&app));
    form_page(&page, Some(app), fields, FieldErrors::default())
}

/// `POST /admin/apps/{app}/edit`. Whether the app is public stays as it was made.
pub(crate) async fn update(page: Page, id: AppId, form: CsrfForm<AppFields>) -> Result<HttpResponse, PageError> {
    let app = load(&page, id).await?;
    let mut fields = form.0;
    fields.kind = if app.is_confidential() { "confidential".into() } else { "public".into() };
    let valid = match checked(&page, &fields) {
        Ok(valid) => valid,
        Err(errors) => return form_page(&page, Some(app), fields, errors),
    };
    let (actor, AppId(key)) = (page.actor(), id);
    let row = db::run(&page.pool, move |conn| -> anyhow::Result<_> { Ok(clients::update(conn, &actor, key, &valid)?) })
        .await?;
    Ok(page.redirect(&app_page(row.id), &format!("{} saved. Tokens issued before now must be renewed.", row.name)))
}

async fn set_enabled(page: Page, AppId(id): AppId, enabled: bool) -> Result<HttpResponse, PageError> {
    let actor = page.actor();
    let result =
        db::run(&page.pool, move |conn| -> anyhow::Result<_> { Ok(clients::set_enabled(conn, &actor, id, enabled)) })
            .await?;
    let row = result?;
    page.apps.forget(&row.client_id);
    page.sessions.sync_revocations(&page.pool).await?;
    let message = if enabled {
        format!("{} is enabled: it can sign people in again.", row.name)
    } else {
        format!("{} is disabled: its tokens stopped working, and it cannot sign anyone in.", row.name)
    };
    Ok(page.redirect(&app_page(id), &message))
}

/// `POST /admin/apps/{app}/disable`.
pub(crate) async fn disable(page: Page, id: AppId, _form: CsrfForm<NoFields>) -> Result<HttpResponse, PageError> {
    set_enabled(page, id, false).await
}

/// `POST /admin/apps/{app}/enable`.
pub(crate) async fn enable(page: Page, id: AppId, _form: CsrfForm<NoFields>) -> Result<HttpResponse, PageError> {
    set_enabled(page, id, true).await
}

#[derive(Template)]
#[template(path = "admin/apps/confirm.html")]
struct ConfirmPage {
    layout: Layout,
    app: Client,
    /// `delete` or `rotate-secret`.
    action: &'static str,
}

/// `GET /admin/apps/{app}/delete`.
pub(crate) async fn confirm_delete(page: Page, id: AppId) -> Result<HttpResponse, PageError> {
    let app = load(&page, id).await?;
    render(StatusCode::OK, &ConfirmPage { layout: page.layout(), app, action: "delete" })
}

/// `POST /admin/apps/{app}/delete`.
pub(crate) async fn delete(page: Page, AppId(id): AppId, _form: CsrfForm<NoFields>) -> Result<HttpResponse, PageError> {
    let actor = page.actor();
    let row = db::run(&page.pool, move |conn| -> anyhow::Result<_> { Ok(clients::delete(conn, &actor, id)) }).await??;
    page.apps.forget(&row.client_id);
    page.sessions.sync_revocations(&page.pool).await?;
    Ok(page.redirect("/admin/apps", &format!("{} deleted. Its tokens stopped working.", row.name)))
}

/// `GET /admin/apps/{app}/rotate-secret`.
pub(crate) async fn confirm_rotate(page: Page, id: AppId) -> Result<HttpResponse, PageError> {
    let app = load(&page, id).await?;
    if !app.is_confidential() {
        return Err(PageError::BadRequest(format!("{} is a public app: it has no secret.", app.name)));
    }
    render(StatusCode::OK, &ConfirmPage { layout: page.layout(), app, action: "rotate-secret" })
}

/// `POST /admin/apps/{app}/rotate-secret`: the new secret, shown once.
pub(crate) async fn rotate(page: Page, id: AppId, _form: CsrfForm<NoFields>) -> Result<HttpResponse, PageError> {
    let app = load(&page, id).await?;
    if !app.is_confidential() {
        return Err(PageError::BadRequest(format!("{} is a public app: it has no secret.", app.name)));
    }
    let (actor, AppId(key)) = (page.actor(), id);
    let (_, secret) =
        db::run(&page.pool, move |conn| -> anyhow::Result<_> { Ok(clients::rotate_secret(conn, &actor, key)) })
            .await??;
    page.apps.forget(&app.client_id);
    let issuer = page.sessions.keys().issuer().to_owned();
    render(StatusCode::OK, &SecretPage { layout: page.layout(), app, secret: Some(secret), issuer, created: false })
}
