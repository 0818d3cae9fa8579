use actix_web::{HttpResponse, web};
use anyhow::Context;
use diesel::connection::SimpleConnection;

use crate::db::DbPool;

/// `GET /healthz`: the process is up and answering.
pub(crate) async fn live() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

/// `GET /readyz`: the database answers a query.
pub(crate) async fn ready(pool: web::Data<DbPool>) -> HttpResponse {
    let pool = pool.into_inner();
    let probe = web::block(move || -> anyhow::Result<()> {
        let mut conn = pool.get().context("no database connection available")?;
        conn.batch_execute("SELECT 1").context("the database did not answer")
    })
    .await;
    match probe {
        Ok(Ok(())) => HttpResponse::Ok().json(serde_json::json!({"status": "ready"})),
        Ok(Err(error)) => {
            tracing::warn!(error = ?error, "readiness check failed");
            HttpResponse::ServiceUnavailable().json(serde_json::json!({"status": "unavailable"}))
        }
        Err(error) => {
            tracing::warn!(error = ?error, "readiness check failed");
            HttpResponse::ServiceUnavailable().json(serde_json::json!({"status": "unavailable"}))
        }
    }
}
