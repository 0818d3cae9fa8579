//! The JSON API. Errors are `{"error": code, "message": text}` (see `crate::error::ApiError`).
pub(crate) mod me;
pub(crate) mod openapi;
pub(crate) mod token;
pub(crate) mod users;

use serde::Serialize;

use crate::db::users::User;

/// A user as the API shows it: never the password hash.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct UserJson {
    pub id: i64,
    pub username: String,
    pub email: String,
    pub display_name: String,
    pub role: &'static str,
    pub is_active: bool,
    pub created_at: String,
    pub last_login_at: Option<String>,
}

impl From<&User> for UserJson {
    fn from(user: &User) -> Self {
        let rfc3339 = |at: chrono::NaiveDateTime| at.and_utc().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        Self {
            id: user.id,
            username: user.username.to_string(),
            email: user.email.to_string(),
            display_name: user.display_name.clone(),
            role: user.role.as_str(),
            is_active: user.is_active,
            created_at: rfc3339(user.created_at),
            last_login_at: user.last_login_at.map(rfc3339),
        }
    }
}
