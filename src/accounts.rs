//! Account operations shared by the admin pages, the account pages, the API and the CLI: one
//! validation path for new users, and the rules every change obeys (the last active admin
//! stays, admins cannot lock themselves out, usernames and emails stay unique), each change
//! recorded in the audit trail in its own transaction. Request handlers use them through
//! [`Accounts`], which also makes this instance refuse the sessions a change ended at once;
//! the command line calls the functions directly (instances notice within a second).
use std::sync::Arc;

use secrecy::SecretString;

use crate::auth::credentials;
use crate::auth::sessions::Sessions;
use crate::auth::throttle::{self, LoginThrottle};
use crate::db::audit::{self, Action, Actor};
use crate::db::sessions::{self, Ending};
use crate::db::users::{self, InsertUserError, NewUser, ProfileChanges, User};
use crate::db::{self as database, DbConnection, DbPool, lock_active_admins, throttles, write_transaction};
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
    /// Too many refused attempts of this kind lately; try again after the wait.
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

fn load(conn: &mut DbConnection, id: i64) -> Result<User, AccountError> {
    users::find_by_id(conn, id)?.ok_or(AccountError::NotFound)
}

/// Refuses to remove the last active administrator (demote, disable or delete).
fn ensure_admins_remain(conn: &mut DbConnection, target: &User, doing: &str) -> Result<(), AccountError> {
    if target.role != Role::Admin || !target.is_active {
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
            user.role,
            user.email,
            if must_change_password { "; must choose a new password" } else { "" }
        );
        audit::record(conn, actor, Action::UserCreate, Some((user.id, &user.username)), &details)?;
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
        if changes.role.is_some_and(|role| role != before.role) {
            ensure_not_self(actor, &before, "change the role of")?;
            ensure_admins_remain(conn, &before, "demoted")?;
        }
        let after = users::update_profile(conn, &before, changes)?;
        let role_changed = before.role != after.role;
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
            changed.push(format!("role: {} → {}", before.role, after.role));
        }
        if !ended.is_empty() {
            changed.push(ended);
        }
        if !changed.is_empty() {
            audit::record(conn, actor, Action::UserUpdate, Some((after.id, &after.username)), &changed.join("; "))?;
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
        let action = if active { Action::UserEnable } else { Action::UserDisable };
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
            Action::UserDelete,
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
    action: Action,
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

/// Lets a paused account sign in again from anywhere at once (the address counters stay).
/// Returns whether there was a pause to clear.
pub fn clear_throttle(conn: &mut DbConnection, actor: &Actor, id: i64) -> Result<(User, bool), AccountError> {
    write_transaction(conn, |conn| {
        let user = load(conn, id)?;
        let cleared = throttles::clear(conn, &throttle::account_key(id))?;
        if cleared {
            audit::record(conn, actor, Action::UserThrottleCleared, Some((user.id, &user.username)), "")?;
        }
        Ok((user, cleared))
    })
}

/// The profile fields a handler changes, owned (see [`ProfileChanges`]).
#[derive(Default)]
pub struct ProfileUpdate {
    pub username: Option<Username>,
    pub email: Option<Email>,
    pub display_name: Option<DisplayName>,
    pub role: Option<Role>,
}

/// Every change a request makes to a user or a session: the operation in one transaction with
/// its audit row, then the ended sessions refused on this instance at once.
pub struct Accounts<'a> {
    pool: &'a DbPool,
    sessions: &'a Sessions,
    throttle: &'a Arc<LoginThrottle>,
}

impl<'a> Accounts<'a> {
    pub fn new(pool: &'a DbPool, sessions: &'a Sessions, throttle: &'a Arc<LoginThrottle>) -> Self {
        Self { pool, sessions, throttle }
    }

    /// Runs `work` on the blocking pool; afterwards (whatever it answered) this instance
    /// re-reads the ended sessions, so their tokens stop working here at once.
    async fn change<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut DbConnection) -> Result<T, AccountError> + Send + 'static,
    ) -> Result<T, AccountError> {
        let result = database::run(self.pool, work).await;
        self.sessions.note_revocations(self.pool).await;
        result
    }

    pub async fn create(
        &self,
        actor: Actor,
        account: ValidAccount,
        password_hash: String,
        must_change_password: bool,
    ) -> Result<User, AccountError> {
        database::run(self.pool, move |conn| create(conn, &actor, &account, &password_hash, must_change_password)).await
    }

    pub async fn update_profile(&self, actor: Actor, id: i64, update: ProfileUpdate) -> Result<User, AccountError> {
        self.change(move |conn| {
            let changes = ProfileChanges {
                username: update.username.as_ref(),
                email: update.email.as_ref(),
                display_name: update.display_name.as_ref(),
                role: update.role,
            };
            update_profile(conn, &actor, id, &changes)
        })
        .await
    }

    /// A user changing their own display name and e-mail. A new address that is refused as
    /// taken tells them someone has it, so such refusals are audited and counted like password
    /// guesses (`AccountError::Throttled` once over the budget).
    pub async fn update_own_profile(
        &self,
        actor: Actor,
        user: &User,
        display_name: DisplayName,
        email: Email,
    ) -> Result<User, AccountError> {
        let probe = (email.as_str() != user.email).then(|| self.throttle.email_change_counters(user.id));
        if let Some(counters) = &probe
            && let Err(retry_after) = credentials::begin(self.pool, self.throttle, counters).await?
        {
            return Err(AccountError::Throttled(retry_after));
        }
        let attempted = email.as_str().to_owned();
        let (audit_actor, target) = (actor.clone(), (user.id, user.username.clone()));
        let update = ProfileUpdate { email: Some(email), display_name: Some(display_name), ..Default::default() };
        let saved = self.update_profile(actor, user.id, update).await;
        if let Some(counters) = probe {
            let refused_address = matches!(saved, Err(AccountError::Field(("email", _))));
            credentials::settle(self.pool, self.throttle, counters, !refused_address).await?;
            if refused_address {
                database::run(self.pool, move |conn| -> anyhow::Result<()> {
                    let details = format!("new address refused: {attempted}");
                    let target = Some((target.0, target.1.as_str()));
                    Ok(audit::record(conn, &audit_actor, Action::UserEmailChangeRefused, target, &details)?)
                })
                .await?;
            }
        }
        saved
    }

    pub async fn set_active(&self, actor: Actor, id: i64, active: bool) -> Result<User, AccountError> {
        self.change(move |conn| set_active(conn, &actor, id, active)).await
    }

    pub async fn delete(&self, actor: Actor, id: i64) -> Result<User, AccountError> {
        self.change(move |conn| delete(conn, &actor, id)).await
    }

    pub async fn set_password(
        &self,
        actor: Actor,
        id: i64,
        password_hash: String,
        change: PasswordChange,
        keep_session: Option<String>,
    ) -> Result<User, AccountError> {
        let (must_change, action) = match change {
            PasswordChange::OwnChoice => (false, Action::PasswordChange),
            PasswordChange::AfterOneTime => (false, Action::PasswordForcedChange),
            PasswordChange::AdminReset => (true, Action::UserPasswordReset),
        };
        self.change(move |conn| set_password(conn, &actor, id, &password_hash, must_change, action, keep_session)).await
    }

    /// Ends sessions (`action` says why, e.g. `logout`, `session.revoke`); how many ended.
    pub async fn end_sessions(
        &self,
        actor: Actor,
        which: Ending,
        target: (i64, String),
        action: Action,
    ) -> Result<usize, AccountError> {
        Ok(self.sessions.end(self.pool, which, actor, target, action).await?)
    }

    pub async fn clear_throttle(&self, actor: Actor, id: i64) -> Result<(User, bool), AccountError> {
        let cleared = database::run(self.pool, move |conn| clear_throttle(conn, &actor, id)).await;
        // This instance forgets the pauses it remembers at once (others within a second).
        self.throttle.forget_remembered_pauses();
        cleared
    }
}

/// Why a password is being set: the user's own choice on the account page, the forced choice
/// after a one-time password, or an administrator's reset to a one-time password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordChange {
    OwnChoice,
    AfterOneTime,
    AdminReset,
}

/// The checks every new password passes: typed twice alike, long and uncommon enough (and not
/// built from the account's own names). Messages go to `new_password` / `confirm_password`.
pub fn check_new_password(user: &User, new: &str, confirm: &str, errors: &mut FieldErrors) -> Option<NewPassword> {
    let parsed = errors.check(
        "new_password",
        NewPassword::parse(SecretString::from(new), &[&user.username, &user.email, &user.display_name]),
    );
    if parsed.is_some() && new != confirm {
        errors.add("confirm_password", "The two passwords are not the same");
        return None;
    }
    parsed
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
