//! Enrolling and removing second factors: changes to an account, each in one transaction with
//! its audit row (the secret itself is never logged or audited).
use std::sync::Arc;

use super::{AccountError, Accounts, operations};
use crate::auth::passkeys::NewCredential;
use crate::auth::second_factor::{self, SecondFactors};
use crate::auth::totp::{self, TotpSecret};
use crate::config::NoticeKind;
use crate::db::audit::{self, Action, Actor};
use crate::db::passkeys::{self, NewPasskey, PasskeyRow};
use crate::db::second_factors;
use crate::db::users::{self, User, now};
use crate::db::{self as database, DbConnection, write_transaction};
use crate::mail::{Notice, Outbox};

/// Passkeys one account may hold (each is a row, and the list travels in every registration).
pub const MAX_PASSKEYS_PER_USER: i64 = 20;

const WRONG_CODE: &str = "That code is not right. Enter the code your app shows now (it changes every 30 seconds); \
                          if it keeps failing, check that your phone's clock is set automatically.";

impl Accounts<'_> {
    /// Starts (or restarts) setting up an authenticator app: a new secret, waiting for its
    /// first code. Refused while one is already on.
    pub async fn start_totp_enrolment(&self, user_id: i64) -> Result<(), AccountError> {
        let secret = TotpSecret::generate();
        let sealed = self.factors.seal(user_id, &secret);
        let started = database::run(self.pool, move |conn| -> Result<bool, AccountError> {
            Ok(write_transaction(conn, |conn| second_factors::put_pending_totp(conn, user_id, &sealed, now()))?)
        })
        .await?;
        if !started {
            return Err(AccountError::Refused(
                "Your authenticator app is already set up. Turn it off first to set up another one.".to_owned(),
            ));
        }
        Ok(())
    }

    /// The secret of an enrolment waiting for its first code, if any.
    pub async fn pending_totp(&self, user_id: i64) -> Result<Option<TotpSecret>, AccountError> {
        let factor = database::run(self.pool, move |conn| -> Result<_, AccountError> {
            Ok(second_factors::find_totp(conn, user_id)?)
        })
        .await?;
        Ok(factor
            .filter(|factor| factor.confirmed_at.is_none())
            .and_then(|factor| self.factors.open(user_id, &factor.sealed_secret))
            .map(|(secret, _)| secret))
    }

    /// Turns the pending authenticator app on once `code` proves the user's app has the secret;
    /// returns the new recovery codes (shown once). The session it happened in now counts as
    /// signed in with both factors.
    pub async fn confirm_totp(
        &self,
        actor: Actor,
        user_id: i64,
        code: &str,
        session_id: &str,
    ) -> Result<Vec<String>, AccountError> {
        let code = totp::parse_code(code).ok_or_else(|| field(second_factor::TOTP_SHAPE))?;
        let secret = self.pending_totp(user_id).await?.ok_or_else(|| {
            AccountError::Refused("Start setting up your authenticator app again: that setup has ended.".to_owned())
        })?;
        let at = u64::try_from(chrono::Utc::now().timestamp()).unwrap_or(0);
        let step = secret.matching_step(&code, at).ok_or_else(|| field(WRONG_CODE))?;
        let (shown, hashes) = second_factor::new_recovery_codes();
        let outbox = Arc::clone(self.outbox);
        let keep = session_id.to_owned();
        self.change(move |conn| -> Result<(), AccountError> {
            write_transaction(conn, |conn| {
                let user = load(conn, user_id)?;
                if !second_factors::confirm_totp(conn, user_id, i64::try_from(step).unwrap_or(i64::MAX), now())? {
                    return Err(AccountError::Refused("Your authenticator app is already set up.".to_owned()));
                }
                SecondFactors::store_recovery_codes(conn, user_id, &hashes)?;
                second_factors::set_enabled(conn, user_id, true)?;
                let mut details = format!("authenticator app; {} recovery codes made", hashes.len());
                details.push_str(&end_password_only_sessions(conn, &user, keep)?);
                audit::record(conn, &actor, Action::MfaEnabled, Some((user.id, &user.username)), &details)?;
                notify_factor(conn, &outbox, &user, Change::Added("An authenticator app".to_owned()))
            })
        })
        .await?;
        self.sessions.upgrade_to_second_factor(self.pool, session_id).await?;
        Ok(shown)
    }

    /// Removes one's authenticator app (the caller has checked the password). Refused while
    /// the policy requires a second factor of this user and it is their last one.
    pub async fn remove_second_factor(&self, actor: Actor, user: &User) -> Result<(), AccountError> {
        let user_id = user.id;
        let passkeys_left = database::run(self.pool, move |conn| -> Result<i64, AccountError> {
            Ok(passkeys::count_of_user(conn, user_id)?)
        })
        .await?;
        if self.factors.required_for(user.role) && passkeys_left == 0 {
            return Err(AccountError::Refused(
                "Two-step sign-in is required for your account, so it cannot be turned off. You can make new \
                 recovery codes, or ask an administrator to reset it if you change phones."
                    .to_owned(),
            ));
        }
        let (user_id, outbox) = (user.id, Arc::clone(self.outbox));
        database::run(self.pool, move |conn| -> Result<(), AccountError> {
            write_transaction(conn, |conn| {
                let user = load(conn, user_id)?;
                second_factors::delete_totp(conn, user_id)?;
                second_factors::delete_recovery_codes(conn, user_id)?;
                second_factors::set_enabled(conn, user_id, false)?;
                audit::record(
                    conn,
                    &actor,
                    Action::MfaDisabled,
                    Some((user.id, &user.username)),
                    "authenticator app removed",
                )?;
                notify_factor(conn, &outbox, &user, Change::Removed("Your authenticator app".to_owned()))
            })
        })
        .await
    }

    /// A new set of recovery codes, voiding the old one; returned to be shown once.
    pub async fn regenerate_recovery_codes(&self, actor: Actor, user_id: i64) -> Result<Vec<String>, AccountError> {
        let (shown, hashes) = second_factor::new_recovery_codes();
        database::run(self.pool, move |conn| -> Result<(), AccountError> {
            write_transaction(conn, |conn| {
                let user = load(conn, user_id)?;
                if !user.mfa_enabled {
                    return Err(AccountError::Refused("Set up an authenticator app first.".to_owned()));
                }
                SecondFactors::store_recovery_codes(conn, user_id, &hashes)?;
                let details = format!("{} new codes; the old ones no longer work", hashes.len());
                audit::record(
                    conn,
                    &actor,
                    Action::RecoveryCodesRegenerated,
                    Some((user.id, &user.username)),
                    &details,
                )?;
                Ok(())
            })
        })
        .await?;
        Ok(shown)
    }

    /// When the user's authenticator app was turned on, if it is.
    pub async fn totp_enabled_since(&self, user_id: i64) -> Result<Option<chrono::NaiveDateTime>, AccountError> {
        database::run(self.pool, move |conn| -> Result<_, AccountError> {
            Ok(second_factors::find_totp(conn, user_id)?.and_then(|factor| factor.confirmed_at))
        })
        .await
    }

    /// How many unused recovery codes the user has.
    pub async fn recovery_codes_left(&self, user_id: i64) -> Result<i64, AccountError> {
        database::run(self.pool, move |conn| -> Result<i64, AccountError> {
            Ok(second_factors::recovery_codes_left(conn, user_id)?)
        })
        .await
    }

    /// An administrator's reset for a user who lost their second factor.
    pub async fn reset_second_factor(&self, actor: Actor, id: i64) -> Result<User, AccountError> {
        let outbox = std::sync::Arc::clone(self.outbox);
        self.change(move |conn| operations::reset_second_factor(conn, &outbox, &actor, id)).await
    }
}

/// When `user` (as loaded before the change) had no second factor: their other sessions were
/// opened with the password alone, and end now (`keep` stays, the one the factor was added in).
/// Returns the audit's wording, empty when nothing ended.
fn end_password_only_sessions(conn: &mut DbConnection, user: &User, keep: String) -> Result<String, AccountError> {
    if user.mfa_enabled {
        return Ok(String::new());
    }
    let ended = crate::db::sessions::end_all_of_user(conn, user.id, Some(keep))?;
    Ok(if ended.is_empty() { ended } else { format!("; other sessions (password only): {ended}") })
}

/// Keeps `users.mfa_enabled` true exactly while the user has a confirmed authenticator app or
/// a passkey; returns it.
fn sync_mfa_enabled(conn: &mut DbConnection, user_id: i64) -> Result<bool, AccountError> {
    let enabled = second_factors::inventory(conn, user_id)?.any();
    second_factors::set_enabled(conn, user_id, enabled)?;
    Ok(enabled)
}

/// A passkey's name as the user typed it: 1 to 64 characters, no control characters.
fn passkey_name(raw: &str) -> Result<String, AccountError> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(AccountError::Field((
            "name",
            "Give the passkey a name, such as “Laptop” or “YubiKey”.".to_owned(),
        )));
    }
    if name.chars().count() > 64 || name.chars().any(char::is_control) {
        return Err(AccountError::Field((
            "name",
            "A passkey's name is at most 64 characters, without line breaks or control characters.".to_owned(),
        )));
    }
    Ok(name.to_owned())
}

impl Accounts<'_> {
    /// The user's passkeys, oldest first.
    pub async fn passkeys_of(&self, user_id: i64) -> Result<Vec<PasskeyRow>, AccountError> {
        database::run(self.pool, move |conn| -> Result<_, AccountError> { Ok(passkeys::of_user(conn, user_id)?) }).await
    }

    /// Stores a verified registration under the name the user chose.
    /// Stores a verified registration under the name the user chose. A first second factor
    /// ends the account's other sessions (opened with the password alone), except `session_id`.
    pub async fn add_passkey(
        &self,
        actor: Actor,
        user_id: i64,
        name: &str,
        credential: NewCredential,
        session_id: &str,
    ) -> Result<(), AccountError> {
        let name = passkey_name(name)?;
        let outbox = Arc::clone(self.outbox);
        let keep = session_id.to_owned();
        self.change(move |conn| -> Result<(), AccountError> {
            write_transaction(conn, |conn| {
                let user = load(conn, user_id)?;
                if passkeys::count_of_user(conn, user_id)? >= MAX_PASSKEYS_PER_USER {
                    return Err(AccountError::Refused(format!(
                        "An account can have at most {MAX_PASSKEYS_PER_USER} passkeys: remove one you no longer use first."
                    )));
                }
                let new = NewPasskey {
                    user_id,
                    credential_id: &credential.credential_id,
                    user_handle: &credential.user_handle,
                    name: &name,
                    passkey: &credential.passkey_json,
                    created_at: now(),
                };
                if !passkeys::insert(conn, &new)? {
                    return Err(AccountError::Refused("That passkey is registered already.".to_owned()));
                }
                sync_mfa_enabled(conn, user_id)?;
                let mut details = format!("passkey \"{name}\"");
                details.push_str(&end_password_only_sessions(conn, &user, keep)?);
                audit::record(conn, &actor, Action::PasskeyAdded, Some((user.id, &user.username)), &details)?;
                notify_factor(conn, &outbox, &user, Change::Added(format!("A passkey named “{name}”")))
            })
        })
        .await
    }

    pub async fn rename_passkey(&self, actor: Actor, user_id: i64, id: i64, name: &str) -> Result<(), AccountError> {
        let name = passkey_name(name)?;
        database::run(self.pool, move |conn| -> Result<(), AccountError> {
            write_transaction(conn, |conn| {
                let user = load(conn, user_id)?;
                if !passkeys::rename(conn, user_id, id, &name)? {
                    return Err(AccountError::NotFound);
                }
                audit::record(
                    conn,
                    &actor,
                    Action::PasskeyRenamed,
                    Some((user.id, &user.username)),
                    &format!("now \"{name}\""),
                )?;
                Ok(())
            })
        })
        .await
    }

    /// Removes one of the user's passkeys; it stops working at once. Refused when the policy
    /// requires a second factor of the user and this is their last one.
    pub async fn remove_passkey(&self, actor: Actor, user: &User, id: i64) -> Result<String, AccountError> {
        let (user_id, required) = (user.id, self.factors.required_for(user.role));
        let outbox = Arc::clone(self.outbox);
        database::run(self.pool, move |conn| -> Result<String, AccountError> {
            write_transaction(conn, |conn| {
                let user = load(conn, user_id)?;
                let name = passkeys::delete(conn, user_id, id)?.ok_or(AccountError::NotFound)?;
                if !sync_mfa_enabled(conn, user_id)? {
                    if required {
                        return Err(AccountError::Refused(
                            "This is your last second factor, and your account must have one: add another passkey or \
                             an authenticator app first."
                                .to_owned(),
                        ));
                    }
                    second_factors::delete_recovery_codes(conn, user_id)?;
                }
                audit::record(
                    conn,
                    &actor,
                    Action::PasskeyRemoved,
                    Some((user.id, &user.username)),
                    &format!("passkey \"{name}\""),
                )?;
                notify_factor(conn, &outbox, &user, Change::Removed(format!("The passkey “{name}”")))?;
                Ok(name)
            })
        })
        .await
    }
}

enum Change {
    Added(String),
    Removed(String),
}

/// The notice of a second factor added or removed (when notices of that kind are on).
fn notify_factor(conn: &mut DbConnection, outbox: &Outbox, user: &User, change: Change) -> Result<(), AccountError> {
    let notice = match change {
        Change::Added(what) => Notice::SecondFactorAdded { what },
        Change::Removed(what) => Notice::SecondFactorRemoved { what },
    };
    outbox.notify(conn, operations::recipient(user), NoticeKind::SecondFactor, notice)?;
    Ok(())
}

fn field(message: &str) -> AccountError {
    AccountError::Field(("code", message.to_owned()))
}

fn load(conn: &mut DbConnection, id: i64) -> Result<User, AccountError> {
    users::find_by_id(conn, id)?.ok_or(AccountError::NotFound)
}
