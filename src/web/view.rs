//! View helpers shared by pages: times and waits in words, the sessions table, loading the
//! user a page is about.
use super::params::UserId;
use crate::db::audit::{Action, AuditEvent};
use crate::db::sessions::Session;
use crate::db::users::{self, User};
use crate::db::{self, DbPool};
use crate::error::PageError;

pub fn format_time(at: chrono::NaiveDateTime) -> String {
    at.format("%Y-%m-%d %H:%M").to_string()
}

/// "45 seconds", "1 minute", "3 minutes" (rounded up).
pub fn wait_phrase(wait: std::time::Duration) -> String {
    match wait.as_secs() {
        0..=1 => "a second".to_owned(),
        seconds @ 2..=59 => format!("{seconds} seconds"),
        60 => "1 minute".to_owned(),
        seconds => format!("{} minutes", seconds.div_ceil(60)),
    }
}

/// The user a page is about, as stored now; 404 when there is none.
pub async fn load_user(pool: &DbPool, UserId(id): UserId) -> Result<User, PageError> {
    db::run(pool, move |conn| -> anyhow::Result<Option<User>> { Ok(users::find_by_id(conn, id)?) })
        .await?
        .ok_or(PageError::NotFound)
}

/// One line of a sessions table (`_sessions_table.html`).
pub struct SessionRow {
    pub id: i64,
    pub device: String,
    pub client_ip: String,
    pub via: String,
    /// How the user signed in, in words ("password and one-time code").
    pub signed_in_with: String,
    pub created: String,
    pub last_used: String,
    pub is_current: bool,
    /// Where its "Sign out" button posts.
    pub revoke_action: String,
}

pub fn session_rows(sessions: &[Session], current_sid: Option<&str>, revoke_prefix: &str) -> Vec<SessionRow> {
    sessions
        .iter()
        .map(|session| SessionRow {
            id: session.id,
            device: session.user_agent.clone(),
            client_ip: session.client_ip.clone(),
            via: if session.via == "api" { "API".to_owned() } else { "Web".to_owned() },
            signed_in_with: crate::auth::sessions::describe_amr(&session.amr),
            created: format_time(session.created_at),
            last_used: format_time(session.last_used_at),
            is_current: current_sid == Some(session.sid.as_str()),
            revoke_action: format!("{revoke_prefix}/{}/revoke", session.id),
        })
        .collect()
}

/// One line of an audit table (`admin/_events_table.html`).
pub struct EventRow {
    pub at: String,
    pub actor: String,
    /// The stored code (`user.delete`) and what it means in words.
    pub action: String,
    pub action_words: &'static str,
    pub target: String,
    pub target_id: Option<i64>,
    pub client_ip: String,
    pub details: String,
}

impl From<&AuditEvent> for EventRow {
    fn from(event: &AuditEvent) -> Self {
        Self {
            at: event.occurred_at.format("%Y-%m-%d %H:%M:%S").to_string(),
            actor: crate::export::actor_words(event),
            action: event.action.clone(),
            action_words: Action::from_code(&event.action).map_or("", Action::describe),
            target: event.target_username.clone().unwrap_or_else(|| "—".to_owned()),
            target_id: event.target_id,
            client_ip: event.client_ip.clone().unwrap_or_default(),
            details: event.details.clone(),
        }
    }
}

/// The query of a mailed link's page: `?token=…` (anything else, or nothing, is a link that
/// does not work — never an error).
#[derive(serde::Deserialize)]
pub struct LinkQuery {
    #[serde(default)]
    pub token: String,
}

/// Choosing a password through a mailed link (a reset or an invitation).
#[derive(askama::Template)]
#[template(path = "choose_password.html")]
struct ChoosePasswordPage<'a> {
    layout: super::layout::Layout,
    words: &'a PasswordLink,
    token: &'a str,
    /// For password managers (a hidden field), so they save the new password under it.
    username: &'a str,
    errors: crate::accounts::FieldErrors,
}

/// The form of a page where a mailed link lets someone choose a password.
#[derive(serde::Deserialize)]
pub struct ChooseForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    new_password: String,
    #[serde(default)]
    confirm_password: String,
    /// The hidden username field password managers want; ignored.
    #[serde(default, rename = "username")]
    _username: String,
}

/// A page where a mailed link lets someone choose a password: its purpose and its words.
pub struct PasswordLink {
    pub purpose: crate::mail::links::Purpose,
    pub heading: &'static str,
    pub intro: &'static str,
    pub button: &'static str,
}

impl PasswordLink {
    fn page(
        &self,
        status: actix_web::http::StatusCode,
        token: &str,
        username: &str,
        errors: crate::accounts::FieldErrors,
    ) -> Result<actix_web::HttpResponse, PageError> {
        let page =
            ChoosePasswordPage { layout: super::layout::Layout::default(), words: self, token, username, errors };
        super::layout::render(status, &page)
    }

    /// `GET …?token=`: the form while the link works, else why it does not (showing the page
    /// spends nothing: mail scanners open links).
    pub async fn show(
        &self,
        token: String,
        accounts: crate::accounts::Accounts<'_>,
    ) -> Result<actix_web::HttpResponse, PageError> {
        match accounts.link_owner(token.clone(), self.purpose).await {
            Ok(user) => self.page(actix_web::http::StatusCode::OK, &token, user.username.as_str(), Default::default()),
            Err(error) => self.refusal(error),
        }
    }

    /// `POST`: the link and the new password checked (the usual rules) and hashed; `Err` holds
    /// the page to answer instead (the form again with its errors, or a dead link's page).
    pub async fn chosen(
        &self,
        form: ChooseForm,
        accounts: crate::accounts::Accounts<'_>,
        hasher: &crate::auth::password::PasswordHasher,
    ) -> Result<Result<(String, String), actix_web::HttpResponse>, PageError> {
        let user = match accounts.link_owner(form.token.clone(), self.purpose).await {
            Ok(user) => user,
            Err(error) => return self.refusal(error).map(Err),
        };
        let mut errors = crate::accounts::FieldErrors::default();
        let checked =
            crate::accounts::check_new_password(&user, &form.new_password, &form.confirm_password, &mut errors);
        let Some(password) = checked else {
            let status = actix_web::http::StatusCode::UNPROCESSABLE_ENTITY;
            return self.page(status, &form.token, user.username.as_str(), errors).map(Err);
        };
        Ok(Ok((form.token, hasher.hash(&password).await?)))
    }

    /// A dead link's page, or the error as it is.
    pub fn refusal(&self, error: crate::accounts::AccountError) -> Result<actix_web::HttpResponse, PageError> {
        match error {
            crate::accounts::AccountError::Link(state) => link_gone(self.purpose, &state),
            error => Err(error.into()),
        }
    }
}

#[derive(askama::Template)]
#[template(path = "link_gone.html")]
struct LinkGonePage {
    layout: super::layout::Layout,
    problem: &'static str,
    next_step: &'static str,
    action: Option<(&'static str, &'static str)>,
}

/// 410 with a page that says why a mailed link does not work and what to do instead.
pub fn link_gone(
    purpose: crate::mail::links::Purpose,
    state: &crate::mail::links::LinkState,
) -> Result<actix_web::HttpResponse, PageError> {
    use crate::mail::links::Purpose;
    let (next_step, action) = match purpose {
        Purpose::PasswordReset => {
            ("You can ask for a new link: it works for 30 minutes.", Some(("/login/forgot", "Ask for a new link")))
        }
        Purpose::Invitation => ("Ask the administrator who invited you to send a new invitation.", None),
        Purpose::EmailChange => (
            "Your address has not changed. To change it, enter the new address on your account page again.",
            Some(("/account", "Go to your account")),
        ),
    };
    let page = LinkGonePage { layout: super::layout::Layout::default(), problem: state.problem(), next_step, action };
    super::layout::render(actix_web::http::StatusCode::GONE, &page)
}

/// A CSV download streamed chunk by chunk (`header` first): memory stays flat whatever the
/// number of rows. A failure mid-way ends the stream (the file is then visibly cut short).
pub fn csv_download(
    name: &str,
    header: Vec<u8>,
    chunks: impl futures_util::Stream<Item = Result<actix_web::web::Bytes, PageError>> + 'static,
) -> actix_web::HttpResponse {
    use futures_util::StreamExt;
    let body = futures_util::stream::once(async move { Ok::<_, PageError>(actix_web::web::Bytes::from(header)) })
        .chain(chunks)
        .map(|chunk| {
            chunk.map_err(|error| {
                tracing::error!(error = %format!("{error:#}"), "a CSV export failed part way");
                std::io::Error::other("the export failed")
            })
        });
    let filename = format!("{name}-{}.csv", chrono::Utc::now().format("%Y-%m-%d"));
    actix_web::HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header(("Content-Disposition", format!("attachment; filename=\"{filename}\"")))
        .insert_header(("Cache-Control", "no-store"))
        .streaming(body)
}
