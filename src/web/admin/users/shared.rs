//! The page that shows a one-time password, once (after adding a user or resetting one).
use askama::Template;

use crate::web::layout::Layout;

/// Shown once, right after the password was made; never stored anywhere readable.
#[derive(Template)]
#[template(path = "admin/users/one_time_password.html")]
pub(crate) struct OneTimePasswordPage<'a> {
    pub layout: Layout,
    pub heading: &'a str,
    pub user_id: i64,
    pub username: &'a str,
    pub password: &'a str,
}
