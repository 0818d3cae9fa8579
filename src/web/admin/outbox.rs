//! `GET /admin/outbox`: mail waiting, sent, failing (with the server's last answer) and given
//! up, newest first. Bodies are never shown (they may hold a live link).
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::db::outbox::{self, OutboxRow};
use crate::db::{self, users};
use crate::error::PageError;
use crate::web::context::Page;
use crate::web::layout::{Layout, render};
use crate::web::time_words::{Clock, When};

const SHOWN: i64 = 100;
const STATES: [(&str, &str); 5] =
    [("", "All"), ("pending", "Waiting"), ("failing", "Failing"), ("sent", "Sent"), ("failed", "Given up")];

#[derive(Deserialize, Default)]
pub(crate) struct OutboxQuery {
    #[serde(default)]
    state: String,
}

pub(crate) struct MessageRow {
    id: i64,
    created: When,
    kind: String,
    recipient: String,
    subject: String,
    state: String,
    /// `ok`, `waiting`, `failing` or `failed`, for the tag's colour.
    tone: &'static str,
    attempts: i32,
    last_error: String,
}

#[derive(Template)]
#[template(path = "admin/outbox.html")]
struct OutboxPage {
    layout: Layout,
    mail_on: bool,
    state: String,
    states: Vec<(&'static str, &'static str)>,
    pending: i64,
    failing: i64,
    messages: Vec<MessageRow>,
}

fn row(message: OutboxRow, now: chrono::NaiveDateTime, clock: &Clock) -> MessageRow {
    let (state, tone) = if let Some(at) = message.sent_at {
        (format!("Sent {}", clock.ago(at).text), "ok")
    } else if let Some(at) = message.failed_at {
        (format!("Given up {}", clock.ago(at).text), "failed")
    } else if message.claimed_until.is_some_and(|until| until > now) {
        ("Being delivered".to_owned(), "waiting")
    } else if message.attempts > 0 {
        (format!("Failing; next try {}", clock.ago(message.next_attempt_at).text), "failing")
    } else {
        ("Waiting".to_owned(), "waiting")
    };
    MessageRow {
        id: message.id,
        created: clock.ago(message.created_at),
        kind: message.kind,
        recipient: message.recipient,
        subject: message.subject,
        state,
        tone,
        attempts: message.attempts,
        last_error: message.last_error.unwrap_or_default(),
    }
}

pub(crate) async fn list(page: Page, query: web::Query<OutboxQuery>) -> Result<HttpResponse, PageError> {
    let state = STATES.iter().find(|(code, _)| *code == query.state).map_or("", |(code, _)| code).to_owned();
    let filter = state.clone();
    let ((pending, failing), rows) = db::run(&page.pool, move |conn| -> anyhow::Result<_> {
        Ok((outbox::backlog(conn)?, outbox::recent(conn, &filter, SHOWN)?))
    })
    .await?;
    let (now, clock) = (users::now(), page.clock());
    let view = OutboxPage {
        layout: page.layout(),
        mail_on: page.outbox.enabled(),
        state,
        states: STATES.to_vec(),
        pending,
        failing,
        messages: rows.into_iter().map(|message| row(message, now, &clock)).collect(),
    };
    render(StatusCode::OK, &view)
}
