use actix_web::HttpResponse;
use actix_web::http::header;

use crate::web::extractors::MaybeUser;

/// `GET /`: signed-in visitors to their dashboard, everyone else to the login form.
pub(crate) async fn redirect(visitor: MaybeUser) -> HttpResponse {
    let target = if visitor.0.is_some() { "/dashboard" } else { "/login" };
    HttpResponse::SeeOther().insert_header((header::LOCATION, target)).finish()
}
