//! Account operations shared by the admin pages, the account pages, the API and the CLI: one
//! validation path for new users (`validation`), and the rules every change obeys — the last
//! active admin stays, admins cannot lock themselves out, usernames and emails stay unique —
//! each change recorded in the audit trail in its own transaction (`operations`). Request
//! handlers use them through [`Accounts`] (`service`, `passwords`, `email`, `second_factors`),
//! which also makes this instance refuse the sessions a change ended at once; `Accounts` holds
//! the password hasher, and every way a password is set is one of its methods (`passwords`).
//! The command line calls the operations directly, or the `…_from_command_line` functions for
//! passwords (other instances notice within a second).
mod email;
mod groups;
mod operations;
mod passwords;
mod reset_requests;
mod second_factors;
mod service;
mod validation;

pub use email::Invitation;
pub use groups::{
    GroupInput, MemberChanger, ValidGroup, add_members, create_group, delete_group, remove_members, set_group_manager,
    update_group,
};
pub use operations::{clear_throttle, create, delete, reset_second_factor, set_active, update_profile};
pub use passwords::{
    ChosenPassword, PasswordRefused, PasswordResult, create_from_command_line, invite_from_command_line,
    set_password_from_command_line,
};
pub use reset_requests::ResetRequests;
pub use second_factors::MAX_PASSKEYS_PER_USER;
pub use service::{Accounts, OwnProfileSaved, PasswordChange, ProfileUpdate};
pub use validation::{
    AccountInput, FieldErrors, ValidAccount, check_new_password, generate_one_time_password, wait_phrase,
};

use crate::db::users::InsertUserError;

/// Why an account operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("There is no such user")]
    NotFound,
    /// A rule that protects the system (last admin, self-lockout); the message says which.
    #[error("{0}")]
    Refused(String),
    #[error("{}", .0.1)]
    Field((&'static str, String)),
    /// Too many refused attempts of this kind lately; try again after the wait.
    /// A mailed link that is used, expired, replaced or unknown.
    #[error("{}", .0.problem())]
    Link(Box<crate::mail::links::LinkState>),
    #[error("too many attempts; try again in {} seconds", .0.as_secs())]
    Throttled(std::time::Duration),
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<InsertUserError> for AccountError {
    fn from(error: InsertUserError) -> Self {
        match error {
            InsertUserError::UsernameTaken => Self::Field(("username", error.to_string())),
            InsertUserError::EmailTaken | InsertUserError::EmailLookalike => Self::Field(("email", error.to_string())),
            InsertUserError::Database(error) => Self::Database(error),
        }
    }
}
