//! View helpers shared by pages: times and waits in words, the sessions table, loading the
//! user a page is about.
use chrono::{NaiveDateTime, TimeZone as _};

use super::params::UserId;
use crate::db::audit::{Action, AuditEvent};
use crate::db::sessions::Session;
use crate::db::users::{self, User};
use crate::db::{self, DbPool};
use crate::domain::TimeZone;
use crate::error::PageError;

/// Times as the reader sees them: in their own zone (always named), and "3 days ago" where
/// that reads better. Stored times are UTC.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    zone: TimeZone,
    now: NaiveDateTime,
}

/// One time on a page: the words shown, the exact time (`title`) and the machine-readable
/// one (`datetime`); `_macros.html`'s `when` renders it as a `<time>` element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct When {
    pub text: String,
    pub exact: String,
    pub iso: String,
}

impl Clock {
    pub fn new(zone: TimeZone) -> Self {
        Self { zone, now: chrono::Utc::now().naive_utc() }
    }

    pub fn zone(&self) -> &'static str {
        self.zone.name()
    }

    /// "2026-11-30 14:05 CET".
    pub fn exact(&self, at: NaiveDateTime) -> String {
        self.zone.tz().from_utc_datetime(&at).format("%Y-%m-%d %H:%M %Z").to_string()
    }

    /// The exact time, shown as it is (for expiry times).
    pub fn at(&self, at: NaiveDateTime) -> When {
        let exact = self.exact(at);
        When { text: exact.clone(), exact, iso: Self::iso(at) }
    }

    /// To the second, for the audit trail: "2026-11-30 14:05:09 CET".
    pub fn stamp(&self, at: NaiveDateTime) -> When {
        let text = self.zone.tz().from_utc_datetime(&at).format("%Y-%m-%d %H:%M:%S %Z").to_string();
        When { exact: text.clone(), text, iso: Self::iso(at) }
    }

    /// "just now", "5 minutes ago", "in 3 hours", "3 days ago"; older than a month (or further
    /// ahead) the date in the reader's zone.
    pub fn ago(&self, at: NaiveDateTime) -> When {
        let seconds = (self.now - at).num_seconds();
        let (amount, past) = (seconds.unsigned_abs(), seconds >= 0);
        let words = |count: u64, unit: &str| {
            let unit = if count == 1 { unit.to_owned() } else { format!("{unit}s") };
            if past { format!("{count} {unit} ago") } else { format!("in {count} {unit}") }
        };
        let text = match amount {
            0..60 => {
                if past {
                    "just now".to_owned()
                } else {
                    "in a minute".to_owned()
                }
            }
            60..3_600 => words(amount / 60, "minute"),
            3_600..86_400 => words(amount / 3_600, "hour"),
            86_400..2_592_000 => words(amount / 86_400, "day"),
            _ => self.zone.tz().from_utc_datetime(&at).format("%Y-%m-%d").to_string(),
        };
        When { text, exact: self.exact(at), iso: Self::iso(at) }
    }

    /// As `ago`, or `never` for a time that has not happened.
    pub fn ago_or_never(&self, at: Option<NaiveDateTime>) -> When {
        at.map_or_else(
            || When { text: "never".to_owned(), exact: String::new(), iso: String::new() },
            |at| self.ago(at),
        )
    }

    /// When `day` begins in the reader's zone, in UTC (for date filters).
    pub fn start_of(&self, day: chrono::NaiveDate) -> NaiveDateTime {
        let midnight = day.and_time(chrono::NaiveTime::MIN);
        // A zone that skips midnight (a daylight-saving change) starts the day at its first hour.
        let local = self.zone.tz().from_local_datetime(&midnight);
        local.earliest().map_or(midnight, |at| at.naive_utc())
    }

    fn iso(at: NaiveDateTime) -> String {
        at.and_utc().format("%Y-%m-%dT%H:%M:%SZ").to_string()
    }
}

pub use crate::accounts::wait_phrase;

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
    pub created: When,
    pub last_used: When,
    pub is_current: bool,
    /// Where its "Sign out" button posts.
    pub revoke_action: String,
}

pub fn session_rows(
    sessions: &[Session],
    current_sid: Option<&str>,
    revoke_prefix: &str,
    clock: &Clock,
) -> Vec<SessionRow> {
    sessions
        .iter()
        .map(|session| SessionRow {
            id: session.id,
            device: session.user_agent.clone(),
            client_ip: session.client_ip.clone(),
            via: if session.via == "api" { "API".to_owned() } else { "Web".to_owned() },
            signed_in_with: crate::auth::sessions::describe_amr(&session.amr),
            created: clock.ago(session.created_at),
            last_used: clock.ago(session.last_used_at),
            is_current: current_sid == Some(session.sid.as_str()),
            revoke_action: format!("{revoke_prefix}/{}/revoke", session.id),
        })
        .collect()
}

/// One line of an audit table (`admin/_events_table.html`).
pub struct EventRow {
    pub at: When,
    pub actor: String,
    /// The stored code (`user.delete`) and what it means in words.
    pub action: String,
    pub action_words: &'static str,
    pub target: String,
    pub target_id: Option<i64>,
    pub client_ip: String,
    pub details: String,
}

impl EventRow {
    pub fn new(event: &AuditEvent, clock: &Clock) -> Self {
        Self {
            at: clock.stamp(event.occurred_at),
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

    /// `POST`: the password chosen through the link (the usual rules; the link is spent);
    /// `Err` holds the page to answer instead (the form again with its errors, or a dead
    /// link's page).
    pub async fn choose(
        &self,
        form: ChooseForm,
        accounts: crate::accounts::Accounts<'_>,
        client_ip: String,
    ) -> Result<Result<User, actix_web::HttpResponse>, PageError> {
        let chosen = crate::accounts::ChosenPassword { new: &form.new_password, confirm: &form.confirm_password };
        match accounts.set_password_with_link(self.purpose, form.token.clone(), chosen, client_ip).await {
            Ok(Ok(user)) => Ok(Ok(user)),
            Ok(Err(refused)) => {
                let status = actix_web::http::StatusCode::UNPROCESSABLE_ENTITY;
                self.page(status, &form.token, refused.username.as_str(), refused.errors).map(Err)
            }
            Err(error) => self.refusal(error).map(Err),
        }
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
