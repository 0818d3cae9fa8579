//! `GET /admin/audit`: the audit trail, newest first, filterable by actor and target.
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::db::audit::{self, AuditFilter};
use crate::db::users;
use crate::db::{self, DbConnection};
use crate::error::PageError;
use crate::web::context::Page;
use crate::web::layout::{Layout, render};
use crate::web::view::EventRow;

const PAGE_SIZE: i64 = 50;

#[derive(Deserialize, Default)]
pub struct AuditQuery {
    /// A username or a user id.
    #[serde(default)]
    actor: String,
    #[serde(default)]
    target: String,
    #[serde(default)]
    before: String,
}

#[derive(Template)]
#[template(path = "admin/audit.html")]
struct AuditPage {
    layout: Layout,
    actor: String,
    target: String,
    events: Vec<EventRow>,
    next: Option<String>,
    unknown: Vec<String>,
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

pub async fn list(page: Page, query: web::Query<AuditQuery>) -> Result<HttpResponse, PageError> {
    let query = query.into_inner();
    let before_id = match query.before.as_str() {
        "" => None,
        raw => Some(raw.parse::<i64>().map_err(|_| PageError::BadRequest("The page link is damaged.".into()))?),
    };
    let (actor_raw, target_raw) = (query.actor.clone(), query.target.clone());
    let (events, more, unknown) = db::run(&page.pool, move |conn| -> anyhow::Result<_> {
        let actor = resolve(conn, &actor_raw)?;
        let target = resolve(conn, &target_raw)?;
        let unknown: Vec<String> = [&actor, &target].into_iter().filter_map(|r| r.as_ref().err().cloned()).collect();
        if !unknown.is_empty() {
            return Ok((Vec::new(), false, unknown));
        }
        let filter = AuditFilter { actor_id: actor.ok().flatten(), target_id: target.ok().flatten(), before_id };
        let (events, more) = audit::page(conn, &filter, PAGE_SIZE)?;
        Ok((events, more, unknown))
    })
    .await?;
    let next = events.last().filter(|_| more).map(|last| {
        let params = [("actor", query.actor.as_str()), ("target", query.target.as_str())];
        let mut kept: Vec<(&str, String)> =
            params.iter().filter(|(_, v)| !v.is_empty()).map(|(k, v)| (*k, (*v).to_owned())).collect();
        kept.push(("before", last.id.to_string()));
        format!("/admin/audit?{}", serde_urlencoded::to_string(&kept).unwrap_or_default())
    });
    let page = AuditPage {
        layout: page.layout(),
        actor: query.actor,
        target: query.target,
        events: events.iter().map(EventRow::from).collect(),
        next,
        unknown,
    };
    render(StatusCode::OK, &page)
}
