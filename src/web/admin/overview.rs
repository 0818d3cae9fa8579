//! `GET /admin`: the administrators' overview.
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use anyhow::Context;
use askama::Template;

use crate::db;
use crate::db::users::{self, UserCounts};
use crate::error::PageError;
use crate::web::context::Page;
use crate::web::layout::{Layout, render};

/// Exact counts scan every row (60–90 ms at a million users), so each instance reuses them
/// for this long; the page says when they were taken.
const COUNTS_MAX_AGE: Duration = Duration::from_secs(30);

/// The last counts this instance took, shared by its workers.
#[derive(Default)]
pub(crate) struct CountsCache(Mutex<Option<(Instant, chrono::DateTime<chrono::Utc>, UserCounts)>>);

#[derive(Template)]
#[template(path = "admin/overview.html")]
struct OverviewPage {
    layout: Layout,
    counts: UserCounts,
    counted_at: String,
}

pub(crate) async fn overview(page: Page, cache: web::Data<CountsCache>) -> Result<HttpResponse, PageError> {
    let cached = cache.0.lock().ok().and_then(|guard| guard.clone());
    let (counts, counted_at) = match cached {
        Some((taken, at, counts)) if taken.elapsed() < COUNTS_MAX_AGE => (counts, at),
        _ => {
            let counts = db::run(&page.pool, |conn| -> anyhow::Result<UserCounts> {
                users::counts(conn).context("could not count users")
            })
            .await?;
            let at = chrono::Utc::now();
            if let Ok(mut guard) = cache.0.lock() {
                *guard = Some((Instant::now(), at, counts.clone()));
            }
            (counts, at)
        }
    };
    let view =
        OverviewPage { layout: page.layout(), counts, counted_at: counted_at.format("%H:%M:%S UTC").to_string() };
    render(StatusCode::OK, &view)
}
