//! `GET /admin/audit`: the audit trail, newest first, filterable by who, target, action and
//! date range; `GET /admin/audit.csv`: the same events as CSV, streamed.
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use chrono::{NaiveDate, NaiveDateTime};
use serde::Deserialize;

use crate::db::audit::{self, Action, AuditFilter};
use crate::db::users;
use crate::db::{self, DbConnection};
use crate::error::PageError;
use crate::export;
use crate::web::context::Page;
use crate::web::downloads::csv_download;
use crate::web::layout::{Layout, render};
use crate::web::tables::EventRow;

const PAGE_SIZE: i64 = 50;

#[derive(Deserialize, Default, Clone)]
pub(crate) struct AuditQuery {
    /// A username or a user id.
    #[serde(default)]
    actor: String,
    #[serde(default)]
    target: String,
    /// An action's code.
    #[serde(default)]
    action: String,
    /// Dates, `YYYY-MM-DD` (UTC), both included.
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    before: String,
}

#[derive(Template)]
#[template(path = "admin/audit.html")]
struct AuditPage {
    layout: Layout,
    query: AuditQuery,
    actions: Vec<(&'static str, &'static str)>,
    events: Vec<EventRow>,
    next: Option<String>,
    export: String,
    /// Names that match nobody, and dates that are not dates: said above the (empty) list.
    problems: Vec<String>,
    filtered: bool,
}

/// A user id, or the id of the user with that username; `Err` carries the unknown name.
fn resolve(conn: &mut DbConnection, raw: &str) -> anyhow::Result<Result<Option<i64>, String>> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(Ok(None));
    }
    if let Ok(id) = raw.parse::<i64>() {
        return Ok(Ok(Some(id)));
    }
    Ok(users::find_by_login(conn, raw)?.map(|user| Some(user.id)).ok_or_else(|| raw.to_owned()))
}

fn date(raw: &str, field: &str, problems: &mut Vec<String>) -> Option<NaiveDate> {
    let raw = raw.trim();
    if raw.is_empty() {
        return None;
    }
    let parsed = NaiveDate::parse_from_str(raw, "%Y-%m-%d").ok();
    if parsed.is_none() {
        problems.push(format!("“{raw}” is not a date for “{field}”: use the form 2026-11-30."));
    }
    parsed
}

/// The filter the query asks for, or what is wrong with it.
async fn filter_of(page: &Page, query: &AuditQuery) -> Result<Result<AuditFilter, Vec<String>>, PageError> {
    crate::web::params::refuse_control_characters([
        ("Who", query.actor.as_str()),
        ("Target", &query.target),
        ("Action", &query.action),
        ("From", &query.from),
        ("To", &query.to),
    ])?;
    let mut problems = Vec::new();
    // Days as the admin lives them: from midnight to midnight in their time zone.
    let clock = page.clock();
    let from = date(&query.from, "From", &mut problems).map(|day| clock.start_of(day));
    let until: Option<NaiveDateTime> =
        date(&query.to, "To", &mut problems).and_then(|day| day.succ_opt()).map(|day| clock.start_of(day));
    let action = match query.action.trim() {
        "" => None,
        code if Action::from_code(code).is_some() => Some(code.to_owned()),
        code => {
            problems.push(format!("There is no action “{code}”."));
            None
        }
    };
    let before_id = match query.before.as_str() {
        "" => None,
        raw => Some(raw.parse::<i64>().map_err(|_| PageError::BadRequest("The page link is damaged.".into()))?),
    };
    let (actor_raw, target_raw) = (query.actor.clone(), query.target.clone());
    let (actor, target) = db::run(&page.pool, move |conn| -> anyhow::Result<_> {
        Ok((resolve(conn, &actor_raw)?, resolve(conn, &target_raw)?))
    })
    .await?;
    for unknown in [&actor, &target].into_iter().filter_map(|found| found.as_ref().err()) {
        problems
            .push(format!("There is no user called “{unknown}”. To see a deleted user’s history, use their user id."));
    }
    if !problems.is_empty() {
        return Ok(Err(problems));
    }
    Ok(Ok(AuditFilter {
        actor_id: actor.ok().flatten(),
        target_id: target.ok().flatten(),
        before_id,
        action,
        from,
        until,
    }))
}

/// The filters of the query as URL parameters (no page position).
fn filter_params(query: &AuditQuery) -> Vec<(&'static str, String)> {
    [
        ("actor", &query.actor),
        ("target", &query.target),
        ("action", &query.action),
        ("from", &query.from),
        ("to", &query.to),
    ]
    .into_iter()
    .filter(|(_, value)| !value.trim().is_empty())
    .map(|(key, value)| (key, value.clone()))
    .collect()
}

pub(crate) async fn list(page: Page, query: web::Query<AuditQuery>) -> Result<HttpResponse, PageError> {
    let query = query.into_inner();
    let (events, more, problems) = match filter_of(&page, &query).await? {
        Ok(filter) => {
            let (events, more) =
                db::run(&page.pool, move |conn| -> anyhow::Result<_> { Ok(audit::page(conn, &filter, PAGE_SIZE)?) })
                    .await?;
            (events, more, Vec::new())
        }
        Err(problems) => (Vec::new(), false, problems),
    };
    let next = events.last().filter(|_| more).map(|last| {
        let mut params = filter_params(&query);
        params.push(("before", last.id.to_string()));
        format!("/admin/audit?{}", serde_urlencoded::to_string(&params).unwrap_or_default())
    });
    let params = filter_params(&query);
    let clock = page.clock();
    let view = AuditPage {
        layout: page.layout(),
        filtered: !params.is_empty(),
        export: format!("/admin/audit.csv?{}", serde_urlencoded::to_string(&params).unwrap_or_default()),
        actions: Action::ALL.iter().map(|action| (action.code(), action.describe())).collect(),
        events: events.iter().map(|event| EventRow::new(event, &clock)).collect(),
        next,
        problems,
        query,
    };
    let status = if view.problems.is_empty() { StatusCode::OK } else { StatusCode::BAD_REQUEST };
    render(status, &view)
}

pub(crate) async fn export(page: Page, query: web::Query<AuditQuery>) -> Result<HttpResponse, PageError> {
    let filter = match filter_of(&page, &query).await? {
        Ok(filter) => AuditFilter { before_id: None, ..filter },
        Err(problems) => return Err(PageError::BadRequest(problems.join(" "))),
    };
    let header = export::audit_header()?;
    let pool = page.pool.clone();
    let chunks = futures_util::stream::unfold(Some(filter), move |state| {
        let pool = pool.clone();
        async move {
            let filter = state?;
            let chunk = db::run(&pool, move |conn| -> anyhow::Result<_> {
                let (events, next) = export::audit_chunk(conn, &filter)?;
                Ok((export::audit_rows(&events)?, next))
            })
            .await;
            Some(match chunk {
                Ok((bytes, next)) => (Ok(web::Bytes::from(bytes)), next),
                Err(error) => (Err(PageError::Unexpected(error)), None),
            })
        }
    });
    Ok(csv_download("audit", header, chunks))
}
