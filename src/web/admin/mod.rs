//! The admin area, `/admin/**`: every handler takes `AdminUser`, so non-admins get 403.
pub mod audit;
pub mod overview;
pub mod user_actions;
pub mod user_detail;
pub mod user_new;
pub mod users;

use crate::error::PageError;

/// `{id}` from the path: a malformed id is a 400, not a 404 or a 500.
pub fn parse_user_id(raw: &str) -> Result<i64, PageError> {
    raw.parse()
        .map_err(|_| PageError::BadRequest(format!("“{}” is not a user id.", raw.chars().take(40).collect::<String>())))
}

pub fn format_time(at: chrono::NaiveDateTime) -> String {
    at.format("%Y-%m-%d %H:%M").to_string()
}
