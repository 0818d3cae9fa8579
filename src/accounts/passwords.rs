//! Every way a password is set, in one place: the user's own change (with the current
//! password), the forced change after a one-time password, an administrator's one-time
//! password, a mailed reset link, an accepted invitation, new accounts, and the command line.
//! Each takes the plain password, checks it (the rules of `check_new_password`), hashes it
//! on the hashing threads and stores it with its audit row; handlers never hash.
use std::time::Duration;

use secrecy::SecretString;

use super::service::Accounts;
use super::{AccountError, FieldErrors, PasswordChange, ValidAccount, check_new_password, operations};
use crate::auth::credentials::{self, PasswordCheck};
use crate::auth::password::hash_replacement_blocking;
use crate::db::DbConnection;
use crate::db::audit::{Action, Actor};
use crate::db::users::User;
use crate::domain::{NewPassword, Username};
use crate::mail::Outbox;
use crate::mail::links::Purpose;

/// A new password as a form gave it: typed twice.
pub struct ChosenPassword<'a> {
    pub new: &'a str,
    pub confirm: &'a str,
}

/// Why a password was not set: the form's field errors (and, when the current password was
/// asked too often, how long to wait).
#[derive(Debug)]
pub struct PasswordRefused {
    /// Whose password it was to be (the link pages name the account).
    pub username: Username,
    pub errors: FieldErrors,
    pub retry_after: Option<Duration>,
}

impl PasswordRefused {
    fn of(user: &User, errors: FieldErrors) -> Self {
        Self { username: user.username.clone(), errors, retry_after: None }
    }
}

/// What a password-setting method answers: the account as it is now, or why not.
pub type PasswordResult = Result<Result<User, PasswordRefused>, AccountError>;

impl Accounts<'_> {
    /// Checks `password` as `user`'s current one on the sign-in counters of this client
    /// (`device`: its device credential), a wrong one audited in the same trip.
    pub async fn check_password(
        &self,
        actor: Actor,
        user: &User,
        password: &str,
        device: Option<&str>,
    ) -> Result<PasswordCheck, AccountError> {
        let password = SecretString::from(password);
        Ok(credentials::check_current_password(self.pool, self.hasher, self.throttle, user, password, actor, device)
            .await?)
    }

    /// The user's own change on the account page: the current password first (on the sign-in
    /// counters), then the new one, which must differ. Every other session of theirs ends.
    pub async fn change_own_password(
        &self,
        actor: Actor,
        user: &User,
        current: &str,
        chosen: ChosenPassword<'_>,
        device: Option<&str>,
        keep_session: String,
    ) -> PasswordResult {
        let mut errors = FieldErrors::default();
        let mut retry_after = None;
        if current.is_empty() {
            errors.add("current_password", "Enter your current password");
        } else {
            match self.check_password(actor.clone(), user, current, device).await? {
                PasswordCheck::Right => {}
                PasswordCheck::Wrong => errors.add("current_password", "Your current password is not right"),
                PasswordCheck::Throttled { retry_after: wait } => {
                    let message = format!("Too many wrong passwords. Wait {} and try again.", super::wait_phrase(wait));
                    errors.add("current_password", message);
                    retry_after = Some(wait);
                }
            }
        }
        let new_password = check_new_password(user, chosen.new, chosen.confirm, &mut errors);
        let hash = match new_password.filter(|_| errors.is_empty()) {
            Some(new_password) => self.hasher.hash_replacement(&new_password, user.password_hash.clone()).await?,
            None => None,
        };
        let Some(hash) = hash.filter(|_| errors.is_empty()) else {
            if errors.is_empty() {
                errors.add("new_password", "Your new password must be different from your current one");
            }
            return Ok(Err(PasswordRefused { username: user.username.clone(), errors, retry_after }));
        };
        let keep = Some(keep_session);
        self.set_password(actor, user.id, hash, PasswordChange::OwnChoice, keep).await.map(Ok)
    }

    /// The password of their own that a user with a one-time password must choose; it may
    /// not be the one-time password again.
    pub async fn choose_after_one_time(
        &self,
        actor: Actor,
        user: &User,
        chosen: ChosenPassword<'_>,
        keep_session: String,
    ) -> PasswordResult {
        let mut errors = FieldErrors::default();
        let Some(new_password) = check_new_password(user, chosen.new, chosen.confirm, &mut errors) else {
            return Ok(Err(PasswordRefused::of(user, errors)));
        };
        // The hash on file is the one-time password's: it must not become the permanent one.
        let Some(hash) = self.hasher.hash_replacement(&new_password, user.password_hash.clone()).await? else {
            errors.add(
                "new_password",
                "That is the one-time password you were given. Choose a password of your own that nobody else knows.",
            );
            return Ok(Err(PasswordRefused::of(user, errors)));
        };
        self.set_password(actor, user.id, hash, PasswordChange::AfterOneTime, Some(keep_session)).await.map(Ok)
    }

    /// An administrator's reset of user `id` to a new one-time password, which they hand over
    /// once (returned beside the account). Resetting your own is refused.
    pub async fn reset_to_one_time_password(&self, actor: Actor, id: i64) -> Result<(User, String), AccountError> {
        let password = super::generate_one_time_password();
        let parsed = NewPassword::parse(SecretString::from(password.clone()), &[])
            .map_err(|error| anyhow::anyhow!("a generated password was refused: {error}"))?;
        let hash = self.hasher.hash(&parsed).await?;
        let user = self.set_password(actor, id, hash, PasswordChange::AdminReset, None).await?;
        Ok((user, password))
    }

    /// The password chosen through a mailed link (`purpose`: a reset or an invitation): the
    /// link is spent; a dead link is `AccountError::Link`.
    pub async fn set_password_with_link(
        &self,
        purpose: Purpose,
        token: String,
        chosen: ChosenPassword<'_>,
        client_ip: String,
    ) -> PasswordResult {
        let user = self.link_owner(token.clone(), purpose).await?;
        let mut errors = FieldErrors::default();
        let Some(password) = check_new_password(&user, chosen.new, chosen.confirm, &mut errors) else {
            return Ok(Err(PasswordRefused::of(&user, errors)));
        };
        let hash = self.hasher.hash(&password).await?;
        match purpose {
            Purpose::Invitation => self.accept_invitation(token, hash, client_ip).await.map(Ok),
            _ => self.reset_password_with_link(token, hash, client_ip).await.map(Ok),
        }
    }

    /// A new account with its password (`must_change`: a one-time password the user replaces
    /// at their first sign-in).
    pub async fn create(&self, actor: Actor, account: ValidAccount, must_change: bool) -> Result<User, AccountError> {
        let hash = self.hasher.hash(&account.password).await?;
        self.create_with_hash(actor, account, hash, must_change).await
    }

    /// A new account whose owner chooses their password through the invitation mailed to them
    /// (until then its password is `account`'s, which nobody is told).
    pub async fn invite(&self, actor: Actor, account: ValidAccount) -> Result<User, AccountError> {
        let hash = self.hasher.hash(&account.password).await?;
        self.invite_with_hash(actor, account, hash).await
    }
}

/// The command line's `user set-password`: the new password (which must differ from the
/// current one) hashed here and stored; every session of the user ends.
pub fn set_password_from_command_line(
    conn: &mut DbConnection,
    outbox: &Outbox,
    user: &User,
    password: &NewPassword,
) -> Result<User, AccountError> {
    let hash = hash_replacement_blocking(password, &user.password_hash)?
        .ok_or_else(|| AccountError::Refused(format!("it is the password {:?} already has", user.username.as_str())))?;
    let actor = Actor::command_line();
    let new = operations::NewHash { hash: &hash, must_change: false };
    operations::set_password(conn, outbox, &actor, user.id, new, Action::UserPasswordReset, None)
}

/// The command line's `user create`: the account with its password hashed here.
pub fn create_from_command_line(
    conn: &mut DbConnection,
    account: &ValidAccount,
    must_change: bool,
) -> Result<User, AccountError> {
    let hash = crate::auth::password::hash_blocking(account.password.expose())?;
    operations::create(conn, &Actor::command_line(), account, &hash, must_change)
}

/// The command line's `user invite`: the account with its unknown password hashed here, and
/// the invitation queued.
pub fn invite_from_command_line(
    conn: &mut DbConnection,
    outbox: &Outbox,
    account: &ValidAccount,
) -> Result<User, AccountError> {
    let hash = crate::auth::password::hash_blocking(account.password.expose())?;
    super::email::invite(conn, outbox, &Actor::command_line(), account, &hash)
}
