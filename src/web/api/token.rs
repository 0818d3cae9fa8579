//! `POST /api/token`: exchange a username (or email) and password for an access token.
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::auth::credentials::{LoginOutcome, new_session_id, record_outcome, verify_credentials};
use crate::auth::password::PasswordHasher;
use crate::auth::tokens::JwtKeys;
use crate::db::DbPool;
use crate::error::ApiError;
use crate::web::login::client_ip;

#[derive(Deserialize)]
pub struct TokenRequest {
    username: Option<String>,
    email: Option<String>,
    password: Option<String>,
}

#[derive(Serialize)]
struct TokenResponse {
    token: String,
    token_type: &'static str,
    expires_in: u64,
    user: TokenUser,
}

#[derive(Serialize)]
struct TokenUser {
    id: i64,
    username: String,
    email: String,
    role: &'static str,
}

pub async fn issue(
    req: HttpRequest,
    body: web::Json<TokenRequest>,
    pool: web::Data<DbPool>,
    hasher: web::Data<PasswordHasher>,
    keys: web::Data<JwtKeys>,
) -> Result<HttpResponse, ApiError> {
    let TokenRequest { username, email, password } = body.into_inner();
    let login = match (username, email) {
        (Some(username), None) => username,
        (None, Some(email)) => email,
        (Some(_), Some(_)) => {
            return Err(ApiError::BadRequest("give either \"username\" or \"email\", not both".into()));
        }
        (None, None) => {
            return Err(ApiError::BadRequest("missing field: \"username\" or \"email\"".into()));
        }
    };
    let password = password.ok_or_else(|| ApiError::BadRequest("missing field: \"password\"".into()))?;
    if login.is_empty() || password.is_empty() {
        return Err(ApiError::BadRequest("\"username\"/\"email\" and \"password\" must not be empty".into()));
    }

    let outcome = verify_credentials(&pool, &hasher, &login, SecretString::from(password)).await?;
    record_outcome(&pool, &outcome, &login, client_ip(&req), "api").await?;
    let LoginOutcome::Success(user) = outcome else {
        tracing::info!(event = "login_failed", via = "api", username = %login.escape_debug(), client_ip = %client_ip(&req), "login failed");
        return Err(ApiError::InvalidCredentials);
    };
    if user.must_change_password {
        return Err(ApiError::PasswordChangeRequired);
    }
    let issued = keys.issue(&user, &new_session_id())?;
    tracing::info!(event = "login_ok", via = "api", username = %user.username, client_ip = %client_ip(&req), "login succeeded");
    Ok(HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "no-store")).json(TokenResponse {
        token: issued.token,
        token_type: "Bearer",
        expires_in: keys.ttl().as_secs(),
        user: TokenUser {
            id: user.id,
            username: user.username.clone(),
            email: user.email.clone(),
            role: user.role().as_str(),
        },
    }))
}
