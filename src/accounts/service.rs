//! [`Accounts`]: the async face of the operations for request handlers.
use std::sync::Arc;

use super::{AccountError, FieldErrors, ValidAccount, operations};
use crate::auth::credentials;
use crate::auth::password::PasswordHasher;
use crate::auth::second_factor::SecondFactors;
use crate::auth::sessions::Sessions;
use crate::auth::throttle::LoginThrottle;
use crate::db::audit::{self, Action, Actor};
use crate::db::sessions::Ending;
use crate::db::users::{ProfileChanges, User};
use crate::db::{self as database, DbConnection, DbPool};
use crate::domain::{DisplayName, Email, Role, TimeZone, Username};
use crate::mail::Outbox;

/// The profile fields a handler changes, owned (see [`ProfileChanges`]).
#[derive(Default)]
pub struct ProfileUpdate {
    pub username: Option<Username>,
    pub email: Option<Email>,
    pub display_name: Option<DisplayName>,
    pub role: Option<Role>,
    pub time_zone: Option<TimeZone>,
}

/// A user's own profile, saved; a new address is confirmed through a link sent there first.
pub struct OwnProfileSaved {
    pub user: User,
    pub confirmation_sent_to: Option<Email>,
}

/// Every change a request makes to a user or a session: the operation in one transaction with
/// its audit row, then the ended sessions refused on this instance at once.
pub struct Accounts<'a> {
    pub(super) pool: &'a DbPool,
    pub(super) sessions: &'a Sessions,
    pub(super) throttle: &'a Arc<LoginThrottle>,
    pub(super) hasher: &'a PasswordHasher,
    pub(super) factors: &'a Arc<SecondFactors>,
    pub(super) outbox: &'a Arc<Outbox>,
}

impl<'a> Accounts<'a> {
    pub fn new(
        pool: &'a DbPool,
        sessions: &'a Sessions,
        throttle: &'a Arc<LoginThrottle>,
        hasher: &'a PasswordHasher,
        factors: &'a Arc<SecondFactors>,
        outbox: &'a Arc<Outbox>,
    ) -> Self {
        Self { pool, sessions, throttle, hasher, factors, outbox }
    }

    /// Runs `work` on the blocking pool; afterwards (whatever it answered) this instance
    /// re-reads the ended sessions, so their tokens stop working here at once.
    pub(super) async fn change<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut DbConnection) -> Result<T, AccountError> + Send + 'static,
    ) -> Result<T, AccountError> {
        let result = database::run(self.pool, work).await;
        self.sessions.note_revocations(self.pool).await;
        result
    }

    /// Every way a new account would clash with existing ones (username and e-mail at once,
    /// so the form can show both); empty when it would not. The insert still checks, for races.
    pub async fn clashes(&self, account: &ValidAccount) -> Result<FieldErrors, AccountError> {
        use crate::db::users::{InsertUserError, find_by_login, taken};
        let (username, email, skeleton) =
            (account.username.to_string(), account.email.to_string(), account.email.skeleton());
        let (names, looks, exact) = database::run(self.pool, move |conn| -> Result<_, AccountError> {
            let (names, looks) = taken(conn, &[username.as_str()], &[skeleton.as_str()])?;
            Ok((names, looks, find_by_login(conn, &email)?.is_some()))
        })
        .await?;
        let mut errors = FieldErrors::default();
        if !names.is_empty() {
            errors.add("username", InsertUserError::UsernameTaken.to_string());
        }
        if exact {
            errors.add("email", InsertUserError::EmailTaken.to_string());
        } else if !looks.is_empty() {
            errors.add("email", InsertUserError::EmailLookalike.to_string());
        }
        Ok(errors)
    }

    pub(super) async fn create_with_hash(
        &self,
        actor: Actor,
        account: ValidAccount,
        password_hash: String,
        must_change_password: bool,
    ) -> Result<User, AccountError> {
        database::run(self.pool, move |conn| {
            operations::create(conn, &actor, &account, &password_hash, must_change_password)
        })
        .await
    }

    pub async fn update_profile(&self, actor: Actor, id: i64, update: ProfileUpdate) -> Result<User, AccountError> {
        let outbox = Arc::clone(self.outbox);
        self.change(move |conn| {
            let changes = ProfileChanges {
                username: update.username.as_ref(),
                email: update.email.as_ref(),
                display_name: update.display_name.as_ref(),
                role: update.role,
                time_zone: update.time_zone,
            };
            operations::update_profile(conn, &outbox, &actor, id, &changes)
        })
        .await
    }

    /// A user changing their own display name and e-mail (with mail on, the address changes
    /// when they follow the link sent to it). A new address that is refused as
    /// taken tells them someone has it, so such refusals are audited and counted like password
    /// guesses (`AccountError::Throttled` once over the budget).
    pub async fn update_own_profile(
        &self,
        actor: Actor,
        user: &User,
        display_name: DisplayName,
        email: Email,
        time_zone: TimeZone,
    ) -> Result<OwnProfileSaved, AccountError> {
        let probe = (email != user.email).then(|| self.throttle.email_change_counters(user.id));
        if let Some(counters) = &probe
            && let Err(retry_after) = credentials::begin(self.pool, self.throttle, counters).await?
        {
            return Err(AccountError::Throttled(retry_after));
        }
        let attempted = email.as_str().to_owned();
        let (audit_actor, target) = (actor.clone(), (user.id, user.username.to_string()));
        // With mail, a new address waits for its confirmation link; the name changes now.
        let confirm = self.outbox.enabled() && email != user.email;
        let saved = if confirm {
            let confirming = email.clone();
            match self.request_email_change(actor.clone(), user, email).await {
                Ok(()) => {
                    let update = ProfileUpdate {
                        display_name: Some(display_name),
                        time_zone: Some(time_zone),
                        ..Default::default()
                    };
                    self.update_profile(actor, user.id, update)
                        .await
                        .map(|user| OwnProfileSaved { user, confirmation_sent_to: Some(confirming) })
                }
                Err(error) => Err(error),
            }
        } else {
            let update = ProfileUpdate {
                email: Some(email),
                display_name: Some(display_name),
                time_zone: Some(time_zone),
                ..Default::default()
            };
            self.update_profile(actor, user.id, update)
                .await
                .map(|user| OwnProfileSaved { user, confirmation_sent_to: None })
        };
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
        self.change(move |conn| operations::set_active(conn, &actor, id, active)).await
    }

    pub async fn delete(&self, actor: Actor, id: i64) -> Result<User, AccountError> {
        self.change(move |conn| operations::delete(conn, &actor, id)).await
    }

    pub(super) async fn set_password(
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
        let outbox = Arc::clone(self.outbox);
        self.change(move |conn| {
            let new = operations::NewHash { hash: &password_hash, must_change };
            operations::set_password(conn, &outbox, &actor, id, new, action, keep_session)
        })
        .await
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

    /// Ends every session of `user` (all but `acting_session` when they are signing
    /// themselves out everywhere); how many ended.
    pub async fn sign_out_everywhere(
        &self,
        actor: Actor,
        user: &User,
        acting_session: Option<&str>,
    ) -> Result<usize, AccountError> {
        let is_self = actor.user.as_ref().is_some_and(|(id, _)| *id == user.id);
        let except_sid = acting_session.filter(|_| is_self).map(str::to_owned);
        let ending = Ending::AllOfUser { user_id: user.id, except_sid };
        self.end_sessions(actor, ending, (user.id, user.username.to_string()), Action::SessionRevokeAll).await
    }

    pub async fn clear_throttle(&self, actor: Actor, id: i64) -> Result<(User, bool), AccountError> {
        let cleared = database::run(self.pool, move |conn| operations::clear_throttle(conn, &actor, id)).await;
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
