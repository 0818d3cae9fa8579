//! Account operations shared by the admin pages, the account pages and the CLI: one
//! validation path for new users, and the rules every change obeys (the last active admin
//! stays, admins cannot lock themselves out, usernames and emails stay unique), each change
//! recorded in the audit trail in its own transaction.
use secrecy::SecretString;

use crate::db::audit::{self, Actor};
use crate::db::sessions;
use crate::db::users::{self, InsertUserError, NewUser, ProfileChanges, User};
use crate::db::{DbConnection, lock_active_admins, write_transaction};
use crate::domain::{DisplayName, Email, NewPassword, Role, Username, ValidationError};

/// What someone typed to create an account, before any checks.
pub struct AccountInput<'a> {
    pub username: &'a str,
    pub email: &'a str,
    /// Empty means "use the username".
    pub display_name: &'a str,
    pub role: &'a str,
    pub password: SecretString,
}

/// A new account whose every field has been checked.
pub struct ValidAccount {
    pub username: Username,
    pub email: Email,
    pub display_name: DisplayName,
    pub role: Role,
    pub password: NewPassword,
}

/// Field name and message, in form order, so a page can show each beside its field.
#[derive(Debug, Default)]
pub struct FieldErrors(pub Vec<(&'static str, String)>);

impl FieldErrors {
    pub fn add(&mut self, field: &'static str, message: impl Into<String>) {
        self.0.push((field, message.into()));
    }

    /// The message for `field`, or "" (templates test for emptiness).
    pub fn get(&self, field: &str) -> &str {
        self.0.iter().find(|(name, _)| *name == field).map_or("", |(_, message)| message.as_str())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn first_field(&self) -> &str {
        self.0.first().map_or("", |(field, _)| field)
    }

    /// Collects a parse result's error under `field`, keeping the value when it parsed.
    pub fn check<T>(&mut self, field: &'static str, result: Result<T, ValidationError>) -> Option<T> {
        result.map_err(|error| self.add(field, error.0)).ok()
    }
}

impl std::fmt::Display for FieldErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let lines: Vec<String> = self.0.iter().map(|(field, message)| format!("{field}: {message}")).collect();
        f.write_str(&lines.join("; "))
    }
}

impl std::error::Error for FieldErrors {}

impl ValidAccount {
    pub fn parse(input: AccountInput<'_>) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::default();
        let mut check = |field: &'static str, result: Result<(), ValidationError>| {
            if let Err(error) = result {
                errors.0.push((field, error.0));
            }
        };
        let username = Username::parse(input.username);
        check("username", username.as_ref().map(drop).map_err(Clone::clone));
        let email = Email::parse(input.email);
        check("email", email.as_ref().map(drop).map_err(Clone::clone));
        let display_name = if input.display_name.trim().is_empty() {
            DisplayName::parse(input.username)
        } else {
            DisplayName::parse(input.display_name)
        };
        check("display_name", display_name.as_ref().map(drop).map_err(Clone::clone));
        let role = Role::parse(input.role);
        check("role", role.as_ref().map(drop).map_err(Clone::clone));
        let password = NewPassword::parse(input.password, &[input.username, input.email, input.display_name]);
        let password_error = password.as_ref().err().cloned();
        check("password", password_error.map_or(Ok(()), Err));
        match (username, email, display_name, role, password) {
            (Ok(username), Ok(email), Ok(display_name), Ok(role), Ok(password)) if errors.0.is_empty() => {
                Ok(Self { username, email, display_name, role, password })
            }
            _ => Err(errors),
        }
    }
}

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

fn load(conn: &mut DbConnection, id: i64) -> Result<User, AccountError> {
    users::find_by_id(conn, id)?.ok_or(AccountError::NotFound)
}

/// Refuses to remove the last active administrator (demote, disable or delete).
fn ensure_admins_remain(conn: &mut DbConnection, target: &User, doing: &str) -> Result<(), AccountError> {
    if target.role() != Role::Admin || !target.is_active {
        return Ok(());
    }
    lock_active_admins(conn)?;
    if users::count_active_admins(conn)? <= 1 {
        return Err(AccountError::Refused(format!(
            "{} is the last active administrator and cannot be {doing}. Make someone else an administrator first.",
            target.username
        )));
    }
    Ok(())
}

/// Admins may not disable, demote or delete themselves: one wrong click would lock them out.
fn ensure_not_self(actor: &Actor, target: &User, doing: &str) -> Result<(), AccountError> {
    if actor.user.as_ref().is_some_and(|(id, _)| *id == target.id) {
        return Err(AccountError::Refused(format!("You cannot {doing} your own account. Ask another administrator.")));
    }
    Ok(())
}

pub fn create(
    conn: &mut DbConnection,
    actor: &Actor,
    account: &ValidAccount,
    password_hash: &str,
    must_change_password: bool,
) -> Result<User, AccountError> {
    write_transaction(conn, |conn| {
        let user = users::insert(
            conn,
            &NewUser {
                username: &account.username,
                email: &account.email,
                display_name: &account.display_name,
                password_hash,
                role: account.role,
                must_change_password,
            },
        )?;
        let details = format!(
            "role: {}; email: {}{}",
            user.role(),
            user.email,
            if must_change_password { "; must choose a new password" } else { "" }
        );
        audit::record(conn, actor, "user.create", Some((user.id, &user.username)), &details)?;
        Ok(user)
    })
}

/// Applies profile changes (an admin editing a user, or a user editing themself) and records
/// which fields changed.
pub fn update_profile(
    conn: &mut DbConnection,
    actor: &Actor,
    id: i64,
    changes: &ProfileChanges<'_>,
) -> Result<User, AccountError> {
    write_transaction(conn, |conn| {
        let before = load(conn, id)?;
        if changes.role.is_some_and(|role| role != before.role()) {
            ensure_not_self(actor, &before, "change the role of")?;
            ensure_admins_remain(conn, &before, "demoted")?;
        }
        let after = users::update_profile(conn, &before, changes)?;
        let role_changed = before.role() != after.role();
        // Tokens carry the role: a new role takes effect through a new login.
        let ended = if role_changed { sessions::end_all_of_user(conn, id, None)? } else { String::new() };
        let mut changed = Vec::new();
        for (field, old, new) in [
            ("username", &before.username, &after.username),
            ("email", &before.email, &after.email),
            ("display name", &before.display_name, &after.display_name),
        ] {
            if old != new {
                changed.push(format!("{field}: {old} → {new}"));
            }
        }
        if role_changed {
            changed.push(format!("role: {} → {}", before.role(), after.role()));
        }
        if !ended.is_empty() {
            changed.push(ended);
        }
        if !changed.is_empty() {
            audit::record(conn, actor, "user.update", Some((after.id, &after.username)), &changed.join("; "))?;
        }
        Ok(after)
    })
}

pub fn set_active(conn: &mut DbConnection, actor: &Actor, id: i64, active: bool) -> Result<User, AccountError> {
    write_transaction(conn, |conn| {
        let user = load(conn, id)?;
        if !active {
            ensure_not_self(actor, &user, "disable")?;
            ensure_admins_remain(conn, &user, "disabled")?;
        }
        users::set_active(conn, id, active)?;
        let ended = if active { String::new() } else { sessions::end_all_of_user(conn, id, None)? };
        let action = if active { "user.enable" } else { "user.disable" };
        audit::record(conn, actor, action, Some((user.id, &user.username)), &ended)?;
        load(conn, id)
    })
}

pub fn delete(conn: &mut DbConnection, actor: &Actor, id: i64) -> Result<User, AccountError> {
    write_transaction(conn, |conn| {
        let user = load(conn, id)?;
        ensure_not_self(actor, &user, "delete")?;
        ensure_admins_remain(conn, &user, "deleted")?;
        let ended = sessions::end_all_of_user(conn, id, None)?;
        users::delete(conn, id)?;
        let details = [format!("email: {}", user.email), ended].into_iter().filter(|part| !part.is_empty());
        audit::record(
            conn,
            actor,
            "user.delete",
            Some((user.id, &user.username)),
            &details.collect::<Vec<_>>().join("; "),
        )?;
        Ok(user)
    })
}

/// Stores a new password hash and ends the user's sessions, all but `keep_session` (the one
/// the user changed it from). `action` names the event: an admin's reset, the user's own
/// change, or the forced change after a one-time password.
pub fn set_password(
    conn: &mut DbConnection,
    actor: &Actor,
    id: i64,
    password_hash: &str,
    must_change_password: bool,
    action: &str,
    keep_session: Option<String>,
) -> Result<User, AccountError> {
    write_transaction(conn, |conn| {
        let user = load(conn, id)?;
        if must_change_password && actor.user.as_ref().is_some_and(|(actor_id, _)| *actor_id == id) {
            // A one-time password for yourself would sign you out of the choice of your own.
            return Err(AccountError::Refused(
                "You cannot reset your own password to a one-time password. Change it on your account page, \
                 where your current password is asked for."
                    .to_owned(),
            ));
        }
        users::set_password_hash(conn, id, password_hash, must_change_password)?;
        let ended = sessions::end_all_of_user(conn, id, keep_session)?;
        audit::record(conn, actor, action, Some((user.id, &user.username)), &ended)?;
        load(conn, id)
    })
}

/// A password to hand over once: 16 characters from an alphabet without look-alikes,
/// about 80 bits, in groups of four.
pub fn generate_one_time_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let bytes = crate::random::bytes::<16>();
    let chars: Vec<char> = bytes.iter().map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char).collect();
    chars.chunks(4).map(|group| group.iter().collect::<String>()).collect::<Vec<_>>().join("-")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input<'a>(username: &'a str, email: &'a str, password: &str) -> AccountInput<'a> {
        AccountInput { username, email, display_name: "", role: "user", password: SecretString::from(password) }
    }

    #[test]
    fn a_good_account_parses_and_defaults_the_display_name() {
        let account = ValidAccount::parse(input("Alice", "alice@example.com", "violet tractor sings")).unwrap();
        assert_eq!(account.username.as_str(), "alice");
        assert_eq!(account.display_name.as_str(), "Alice");
    }

    #[test]
    fn one_time_passwords_are_long_random_and_acceptable_as_passwords() {
        let first = generate_one_time_password();
        assert_eq!(first.len(), 19);
        assert_ne!(first, generate_one_time_password());
        assert!(NewPassword::parse(SecretString::from(first), &[]).is_ok());
    }

    #[test]
    fn every_bad_field_is_reported_in_form_order() {
        let errors =
            ValidAccount::parse(AccountInput { role: "root", ..input("a", "nope", "password") }).err().unwrap();
        let fields: Vec<_> = errors.0.iter().map(|(field, _)| *field).collect();
        assert_eq!(fields, ["username", "email", "role", "password"]);
    }
}
