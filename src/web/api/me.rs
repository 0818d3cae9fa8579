//! `GET /api/me`: the caller, as their access token describes them. Answered without the
//! database: the token is at most one access-token lifetime old, and anything that must
//! take effect sooner (disable, delete, role change) revokes the session, or (a group
//! joined or left) renews it.
use actix_web::HttpResponse;
use serde::Serialize;

use crate::web::errors::ApiErrorBody;
use crate::web::extractors::CurrentUser;

/// The caller, as their access token describes them.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Me<'a> {
    id: i64,
    username: &'a str,
    display_name: &'a str,
    role: &'static str,
    /// How the user signed in (RFC 8176): `pwd`, plus `otp` and `mfa` after a second factor.
    amr: &'a [String],
    /// The IANA time zone the user chose for reading times (`UTC` unless they chose one).
    time_zone: &'static str,
    /// The groups the user is in (names, in name order).
    groups: &'a [String],
    /// True when the user is in more groups than a token names (`groups` holds the first).
    groups_truncated: bool,
    token_expires_at: i64,
}

#[utoipa::path(
    get,
    path = "/api/me",
    tag = "users",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller", body = Me<'_>),
        (status = 401, description = "No valid Bearer token", body = ApiErrorBody),
        (status = 403, description = "The account must choose a new password (`password_change_required`) or set up \
                                      two-step sign-in (`mfa_enrolment_required`) on the web first", body = ApiErrorBody),
    )
)]
pub(crate) async fn show(caller: CurrentUser) -> HttpResponse {
    HttpResponse::Ok().insert_header((actix_web::http::header::CACHE_CONTROL, "no-store")).json(Me {
        id: caller.user_id,
        username: &caller.username,
        display_name: &caller.display_name,
        role: caller.role.as_str(),
        amr: &caller.amr,
        time_zone: caller.time_zone.name(),
        groups: &caller.groups,
        groups_truncated: caller.groups_truncated,
        token_expires_at: caller.token_expires_at,
    })
}
