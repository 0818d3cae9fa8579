//! `GET /admin/users/{id}`: one user — profile form, status, password reset, delete, and
//! their audit trail. `POST /admin/users/{id}` saves the profile.
use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use askama::Template;
use serde::Deserialize;

use crate::accounts::{AccountError, FieldErrors, ProfileUpdate};
use crate::auth::sessions::Sessions;
use crate::auth::throttle::{self, Standing};
use crate::db::audit::{self, AuditEvent, AuditFilter};
use crate::db::groups::Group;
use crate::db::sessions::Session;
use crate::db::users::{self, User};
use crate::db::{self, DbPool};
use crate::domain::{DisplayName, Email, Role, Username};
use crate::error::PageError;
use crate::web::context::Page;
use crate::web::flash::Flash;
use crate::web::form::CsrfForm;
use crate::web::layout::{Layout, render};
use crate::web::params::UserId;
use crate::web::tables::{EventRow, SessionRow, session_rows};
use crate::web::time_words::{Clock, When};

const RECENT_EVENTS: i64 = 20;
/// Groups offered by "Add to group" (beyond, add people from the group's own page).
const GROUP_CHOICES: i64 = 200;

#[derive(Deserialize, Default)]
pub(crate) struct ProfileForm {
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub role: String,
}

#[derive(Template)]
#[template(path = "admin/users/detail.html")]
struct UserPage<'a> {
    layout: Layout,
    user: &'a User,
    role: &'static str,
    created: When,
    last_login: When,
    form: ProfileForm,
    errors: FieldErrors,
    events: Vec<EventRow>,
    sessions: Vec<SessionRow>,
    /// Failed sign-ins counting towards a pause, or the pause itself; `None` when clean.
    throttle: Option<String>,
    is_self: bool,
    /// An invitation not accepted yet, in words.
    invitation: Option<String>,
    invitation_live: bool,
    mail_on: bool,
    /// The groups the user is in, and (some of) the others, to add them to.
    groups: &'a [Group],
    other_groups: Vec<&'a Group>,
    /// The apps the user signed in to through Portcullis (shown, not changed, here).
    apps: Vec<crate::web::tables::AppRow>,
    disconnect_base: Option<&'static str>,
}

/// What the page shows besides the form: the user, their open sessions, their recent events.
struct Loaded {
    user: User,
    sessions: Vec<(Session, Vec<String>)>,
    events: Vec<AuditEvent>,
    throttle: Option<Standing>,
    invitation: Option<crate::accounts::Invitation>,
    groups: Vec<Group>,
    /// The first groups by name (the choices of "Add to group").
    all_groups: Vec<Group>,
    apps: Vec<crate::oauth::connections::ConnectedApp>,
}

async fn load(pool: &DbPool, sessions: &Sessions, UserId(id): UserId) -> Result<Loaded, PageError> {
    let (user, events, throttle, groups, all_groups, apps) = db::run(pool, move |conn| -> Result<_, PageError> {
        let user = users::find_by_id(conn, id).map_err(anyhow::Error::from)?.ok_or(PageError::NotFound)?;
        let filter = AuditFilter { target_id: Some(id), ..Default::default() };
        let (events, _) = audit::page(conn, &filter, RECENT_EVENTS).map_err(anyhow::Error::from)?;
        let throttle = throttle::standing(conn, id, users::now()).map_err(anyhow::Error::from)?;
        let groups = db::groups::groups_of(conn, id).map_err(anyhow::Error::from)?;
        let all_groups = db::groups::first(conn, GROUP_CHOICES).map_err(anyhow::Error::from)?;
        let apps = crate::oauth::connections::of_user(conn, id).map_err(anyhow::Error::from)?;
        Ok((user, events, throttle, groups, all_groups, apps))
    })
    .await?;
    let sessions = sessions.list_with_apps(pool, id).await?;
    Ok(Loaded { user, sessions, events, throttle, invitation: None, groups, all_groups, apps })
}

/// The user's page data, with their pending invitation.
async fn load_all(page: &Page, id: UserId) -> Result<Loaded, PageError> {
    let mut loaded = load(&page.pool, &page.sessions, id).await?;
    loaded.invitation = page.accounts().invitation_of(id.0).await?;
    Ok(loaded)
}

fn view<'a>(page: &Page, loaded: &'a Loaded, form: ProfileForm, errors: FieldErrors) -> UserPage<'a> {
    let user = &loaded.user;
    let clock = page.clock();
    UserPage {
        layout: page.layout(),
        role: user.role.as_str(),
        created: clock.ago(user.created_at),
        last_login: clock.ago_or_never(user.last_login_at),
        user,
        form,
        errors,
        events: loaded.events.iter().map(|event| EventRow::new(event, &clock)).collect(),
        sessions: session_rows(
            &loaded.sessions,
            Some(&page.user.session_id),
            &format!("/admin/users/{}/sessions", user.id),
            &clock,
        ),
        throttle: loaded.throttle.as_ref().and_then(|standing| describe_throttle(standing, &clock)),
        is_self: page.user.user_id == user.id,
        invitation: loaded.invitation.as_ref().map(|invitation| {
            if invitation.live {
                format!(
                    "Invited by e-mail on {}; the link works until {}. The user has not chosen a password yet.",
                    clock.exact(invitation.sent_at),
                    clock.exact(invitation.expires_at)
                )
            } else {
                format!(
                    "Invited by e-mail on {}; that link no longer works (expired or revoked), and no password was \
                     chosen. Send the invitation again, or delete the account.",
                    clock.exact(invitation.sent_at)
                )
            }
        }),
        invitation_live: loaded.invitation.as_ref().is_some_and(|invitation| invitation.live),
        mail_on: page.outbox.enabled(),
        groups: &loaded.groups,
        other_groups: loaded.all_groups.iter().filter(|group| !loaded.groups.contains(group)).collect(),
        apps: crate::web::tables::app_rows(loaded.apps.clone(), &clock),
        disconnect_base: None,
    }
}

pub(crate) async fn show(page: Page, id: UserId, flash: Flash) -> Result<HttpResponse, PageError> {
    let loaded = load_all(&page, id).await?;
    let user = &loaded.user;
    let form = ProfileForm {
        username: user.username.to_string(),
        email: user.email.to_string(),
        display_name: user.display_name.clone(),
        role: user.role.as_str().to_owned(),
    };
    let mut view = view(&page, &loaded, form, FieldErrors::default());
    view.layout = view.layout.with_flash(&flash);
    Ok(flash.finish(render(StatusCode::OK, &view)?))
}

pub(crate) async fn update(page: Page, id: UserId, form: CsrfForm<ProfileForm>) -> Result<HttpResponse, PageError> {
    let form = form.0;
    let mut errors = FieldErrors::default();
    let username = errors.check("username", Username::parse(&form.username));
    let email = errors.check("email", Email::parse(&form.email));
    let display_name = errors.check("display_name", DisplayName::parse(&form.display_name));
    let role = errors.check("role", Role::parse(&form.role));

    let (Some(username), Some(email), Some(display_name), Some(role)) = (username, email, display_name, role) else {
        return rerender(&page, id, form, errors).await;
    };
    let update = ProfileUpdate {
        username: Some(username),
        email: Some(email),
        display_name: Some(display_name),
        role: Some(role),
        time_zone: None,
    };
    match page.accounts().update_profile(page.actor(), id.0, update).await {
        Ok(user) => Ok(page.redirect(&format!("/admin/users/{}", id.0), &format!("Saved {}.", user.username))),
        Err(AccountError::NotFound) => Err(PageError::NotFound),
        Err(AccountError::Field((field, message))) => {
            errors.add(field, message);
            rerender(&page, id, form, errors).await
        }
        Err(AccountError::Refused(message)) => {
            errors.add("role", message);
            rerender(&page, id, form, errors).await
        }
        Err(error) => Err(error.into()),
    }
}

/// The user page again with the submitted input kept and each message beside its field.
async fn rerender(page: &Page, id: UserId, form: ProfileForm, errors: FieldErrors) -> Result<HttpResponse, PageError> {
    let loaded = load_all(page, id).await?;
    render(StatusCode::UNPROCESSABLE_ENTITY, &view(page, &loaded, form, errors))
}

fn describe_throttle(standing: &Standing, clock: &Clock) -> Option<String> {
    match (standing.paused_until, standing.recent_failures) {
        (Some(until), _) => Some(format!(
            "Sign-in is paused until {} after repeated failed attempts, for browsers and apps this user \
             has not signed in with before; the user's own devices are not affected.",
            clock.stamp(until).text
        )),
        (None, 0) => None,
        (None, 1) => Some("1 failed sign-in attempt recently.".to_owned()),
        (None, failures) => Some(format!("{failures} failed sign-in attempts recently.")),
    }
}
