//! `GET /admin/users/{id}`: one user — profile form, status, password reset, delete, and
//! their audit trail. `POST /admin/users/{id}` saves the profile.
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::{format_time, parse_user_id};
use crate::accounts::{self, AccountError, FieldErrors};
use crate::auth::client::client_ip;
use crate::auth::cookies::CookiePolicy;
use crate::auth::csrf::CsrfKey;
use crate::auth::sessions::Sessions;
use crate::auth::throttle::{self, Standing};
use crate::db::audit::{self, AuditEvent, AuditFilter};
use crate::db::sessions::Session;
use crate::db::users::{self, ProfileChanges, User};
use crate::db::{self, DbPool};
use crate::domain::{DisplayName, Email, Role, Username};
use crate::error::PageError;
use crate::web::extractors::AdminUser;
use crate::web::flash::{Flash, redirect_with_flash};
use crate::web::form::CsrfForm;
use crate::web::layout::{Layout, render};
use crate::web::sessions::{SessionRow, session_rows};

const RECENT_EVENTS: i64 = 20;

#[derive(Deserialize, Default)]
pub struct ProfileForm {
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub role: String,
}

pub struct EventRow {
    pub at: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub target_id: Option<i64>,
    pub client_ip: String,
    pub details: String,
}

impl From<&AuditEvent> for EventRow {
    fn from(event: &AuditEvent) -> Self {
        Self {
            at: event.occurred_at.format("%Y-%m-%d %H:%M:%S").to_string(),
            actor: event.actor_username.clone().unwrap_or_else(|| "—".to_owned()),
            action: event.action.clone(),
            target: event.target_username.clone().unwrap_or_else(|| "—".to_owned()),
            target_id: event.target_id,
            client_ip: event.client_ip.clone().unwrap_or_default(),
            details: event.details.clone(),
        }
    }
}

#[derive(Template)]
#[template(path = "admin/user.html")]
struct UserPage<'a> {
    layout: Layout,
    user: &'a User,
    role: &'static str,
    created: String,
    last_login: String,
    form: ProfileForm,
    errors: FieldErrors,
    events: Vec<EventRow>,
    sessions: Vec<SessionRow>,
    /// Failed sign-ins counting towards a pause, or the pause itself; `None` when clean.
    throttle: Option<String>,
    is_self: bool,
}

/// What the page shows besides the form: the user, their open sessions, their recent events.
struct Loaded {
    user: User,
    sessions: Vec<Session>,
    events: Vec<AuditEvent>,
    throttle: Option<Standing>,
}

async fn load(pool: &DbPool, sessions: &Sessions, id: i64) -> Result<Loaded, PageError> {
    let (user, events, throttle) = db::run(pool, move |conn| -> Result<_, PageError> {
        let user = users::find_by_id(conn, id).map_err(anyhow::Error::from)?.ok_or(PageError::NotFound)?;
        let filter = AuditFilter { target_id: Some(id), ..Default::default() };
        let (events, _) = audit::page(conn, &filter, RECENT_EVENTS).map_err(anyhow::Error::from)?;
        let throttle = throttle::standing(conn, id, users::now()).map_err(anyhow::Error::from)?;
        Ok((user, events, throttle))
    })
    .await?;
    let sessions = sessions.list(pool, id).await?;
    Ok(Loaded { user, sessions, events, throttle })
}

fn page<'a>(
    admin: &AdminUser,
    csrf: &CsrfKey,
    loaded: &'a Loaded,
    form: ProfileForm,
    errors: FieldErrors,
) -> UserPage<'a> {
    let user = &loaded.user;
    UserPage {
        layout: Layout::for_user(admin, csrf),
        role: user.role().as_str(),
        created: format_time(user.created_at),
        last_login: user.last_login_at.map_or_else(|| "never".to_owned(), format_time),
        user,
        form,
        errors,
        events: loaded.events.iter().map(EventRow::from).collect(),
        sessions: session_rows(
            &loaded.sessions,
            Some(&admin.session_id),
            &format!("/admin/users/{}/sessions", user.id),
        ),
        throttle: loaded.throttle.as_ref().and_then(describe_throttle),
        is_self: admin.user_id == user.id,
    }
}

pub async fn show(
    admin: AdminUser,
    id: web::Path<String>,
    csrf: web::Data<CsrfKey>,
    pool: web::Data<DbPool>,
    sessions: web::Data<Sessions>,
    flash: Flash,
) -> Result<HttpResponse, PageError> {
    let id = parse_user_id(&id)?;
    let loaded = load(&pool, &sessions, id).await?;
    let user = &loaded.user;
    let form = ProfileForm {
        username: user.username.clone(),
        email: user.email.clone(),
        display_name: user.display_name.clone(),
        role: user.role().as_str().to_owned(),
    };
    let mut page = page(&admin, &csrf, &loaded, form, FieldErrors::default());
    page.layout = page.layout.with_flash(&flash);
    Ok(flash.finish(render(StatusCode::OK, &page)?))
}

#[allow(clippy::too_many_arguments)]
pub async fn update(
    req: HttpRequest,
    admin: AdminUser,
    id: web::Path<String>,
    form: CsrfForm<ProfileForm>,
    csrf: web::Data<CsrfKey>,
    cookies: web::Data<CookiePolicy>,
    pool: web::Data<DbPool>,
    sessions: web::Data<Sessions>,
) -> Result<HttpResponse, PageError> {
    let id = parse_user_id(&id)?;
    let form = form.0;
    let mut errors = FieldErrors::default();
    let username = errors.check("username", Username::parse(&form.username));
    let email = errors.check("email", Email::parse(&form.email));
    let display_name = errors.check("display_name", DisplayName::parse(&form.display_name));
    let role = errors.check("role", Role::parse(&form.role));

    let (Some(username), Some(email), Some(display_name), Some(role)) = (username, email, display_name, role) else {
        return rerender(&admin, &csrf, &pool, &sessions, id, form, errors).await;
    };
    let actor = admin.actor(client_ip(&req));
    let result = db::run(&pool, move |conn| {
        let changes = ProfileChanges {
            username: Some(&username),
            email: Some(&email),
            display_name: Some(&display_name),
            role: Some(role),
        };
        accounts::update_profile(conn, &actor, id, &changes)
    })
    .await;
    sessions.note_revocations(&pool).await;
    match result {
        Ok(user) => {
            Ok(redirect_with_flash(&cookies, &format!("/admin/users/{id}"), &format!("Saved {}.", user.username)))
        }
        Err(AccountError::NotFound) => Err(PageError::NotFound),
        Err(AccountError::Field((field, message))) => {
            errors.add(field, message);
            rerender(&admin, &csrf, &pool, &sessions, id, form, errors).await
        }
        Err(AccountError::Refused(message)) => {
            errors.add("role", message);
            rerender(&admin, &csrf, &pool, &sessions, id, form, errors).await
        }
        Err(error) => Err(error.into()),
    }
}

/// The user page again with the submitted input kept and each message beside its field.
#[allow(clippy::too_many_arguments)]
async fn rerender(
    admin: &AdminUser,
    csrf: &CsrfKey,
    pool: &DbPool,
    sessions: &Sessions,
    id: i64,
    form: ProfileForm,
    errors: FieldErrors,
) -> Result<HttpResponse, PageError> {
    let loaded = load(pool, sessions, id).await?;
    render(StatusCode::UNPROCESSABLE_ENTITY, &page(admin, csrf, &loaded, form, errors))
}

fn describe_throttle(standing: &Standing) -> Option<String> {
    match (standing.paused_until, standing.recent_failures) {
        (Some(until), _) => Some(format!(
            "Sign-in is paused until {} UTC after repeated failed attempts, for browsers and apps this user \
             has not signed in with before; the user's own devices are not affected.",
            until.format("%Y-%m-%d %H:%M:%S")
        )),
        (None, 0) => None,
        (None, 1) => Some("1 failed sign-in attempt recently.".to_owned()),
        (None, failures) => Some(format!("{failures} failed sign-in attempts recently.")),
    }
}
