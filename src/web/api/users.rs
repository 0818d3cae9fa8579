//! `GET /api/users/{id}`: one user, for administrators.
use actix_web::{HttpResponse, web};
use anyhow::Context;

use super::UserJson;
use crate::db::DbPool;
use crate::db::users::{self, User};
use crate::error::ApiError;
use crate::web::errors::ApiErrorBody;
use crate::web::params::UserId;

#[utoipa::path(
    get,
    path = "/api/users/{id}",
    tag = "users",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The user's id")),
    responses(
        (status = 200, description = "The user", body = UserJson),
        (status = 400, description = "The id is not a number", body = ApiErrorBody),
        (status = 401, description = "No valid Bearer token", body = ApiErrorBody),
        (status = 403, description = "The caller is not an administrator", body = ApiErrorBody),
        (status = 404, description = "No such user", body = ApiErrorBody),
    )
)]
/// (Only administrators reach it: the route table mounts it behind the admin gate.)
pub(crate) async fn show(UserId(id): UserId, pool: web::Data<DbPool>) -> Result<HttpResponse, ApiError> {
    let pool = pool.into_inner();
    let user = web::block(move || -> anyhow::Result<Option<User>> {
        let mut conn = pool.get().context("no database connection available")?;
        users::find_by_id(&mut conn, id).context("could not load the user")
    })
    .await
    .map_err(|error| ApiError::Unexpected(error.into()))??;
    let user = user.ok_or(ApiError::NotFound)?;
    Ok(HttpResponse::Ok()
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .json(UserJson::from(&user)))
}
