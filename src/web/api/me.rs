//! `GET /api/me`: the caller, as JSON.
use actix_web::HttpResponse;
use serde::Serialize;

use super::UserJson;
use crate::auth::CurrentUser;

#[derive(Serialize)]
struct Me {
    #[serde(flatten)]
    user: UserJson,
    token_expires_at: i64,
}

pub async fn show(caller: CurrentUser) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .json(Me { user: UserJson::from(&caller.user), token_expires_at: caller.claims.exp })
}
