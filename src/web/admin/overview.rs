//! `GET /admin`: the administrators' overview.
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use anyhow::Context;
use askama::Template;

use crate::auth::AdminUser;
use crate::auth::csrf::CsrfKey;
use crate::db::DbPool;
use crate::db::users::{self, UserCounts};
use crate::error::PageError;
use crate::web::layout::{Layout, render};

#[derive(Template)]
#[template(path = "admin/overview.html")]
struct OverviewPage {
    layout: Layout,
    counts: UserCounts,
}

pub async fn overview(
    admin: AdminUser,
    csrf: web::Data<CsrfKey>,
    pool: web::Data<DbPool>,
) -> Result<HttpResponse, PageError> {
    let pool = pool.into_inner();
    let counts = web::block(move || -> anyhow::Result<UserCounts> {
        let mut conn = pool.get().context("no database connection available")?;
        users::counts(&mut conn).context("could not count users")
    })
    .await
    .map_err(|error| PageError::Unexpected(error.into()))??;
    render(StatusCode::OK, &OverviewPage { layout: Layout::for_user(&admin, &csrf), counts })
}
