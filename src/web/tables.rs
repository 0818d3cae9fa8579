//! The tables several pages show: sessions (`_sessions_table.html`), audit events
//! (`admin/_events_table.html`) and connected apps (`_apps_table.html`).
use super::time_words::{Clock, When};
use crate::db::audit::{Action, AuditEvent};
use crate::db::sessions::Session;

/// One line of a sessions table (`_sessions_table.html`).
pub(crate) struct SessionRow {
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
    /// The apps it signed in to (OpenID Connect), by name; empty: none.
    pub apps: String,
}

pub(crate) fn session_rows(
    sessions: &[(Session, Vec<String>)],
    current_sid: Option<&str>,
    revoke_prefix: &str,
    clock: &Clock,
) -> Vec<SessionRow> {
    sessions
        .iter()
        .map(|(session, apps)| SessionRow {
            id: session.id,
            device: session.user_agent.clone(),
            client_ip: session.client_ip.clone(),
            via: if session.via == "api" { "API".to_owned() } else { "Web".to_owned() },
            signed_in_with: crate::auth::sessions::describe_amr(&session.amr),
            created: clock.ago(session.created_at),
            last_used: clock.ago(session.last_used_at),
            is_current: current_sid == Some(session.sid.as_str()),
            revoke_action: format!("{revoke_prefix}/{}/revoke", session.id),
            apps: apps.join(", "),
        })
        .collect()
}

/// One line of an audit table (`admin/_events_table.html`).
pub(crate) struct EventRow {
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
    pub(crate) fn new(event: &AuditEvent, clock: &Clock) -> Self {
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

/// A connected app as the account page and the admin's user page show it.
pub(crate) struct AppRow {
    pub id: i64,
    pub name: String,
    pub learns: Vec<&'static str>,
    pub connected: When,
    pub last_used: When,
}

/// The rows of a user's connected apps, in the reader's clock.
pub(crate) fn app_rows(apps: Vec<crate::oauth::connections::ConnectedApp>, clock: &Clock) -> Vec<AppRow> {
    apps.into_iter()
        .map(|app| AppRow {
            id: app.id,
            name: app.name,
            learns: app.scopes.in_words(),
            connected: clock.stamp(app.connected_at),
            last_used: clock.ago(app.last_used_at),
        })
        .collect()
}
