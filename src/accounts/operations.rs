//! The changes themselves, each in one transaction with its audit row: what the command line
//! calls on a connection and [`super::Accounts`] runs for requests.
use super::{AccountError, ValidAccount};
use crate::auth::throttle;
use crate::config::NoticeKind;
use crate::db::audit::{self, Action, Actor};
use crate::db::users::{self, NewUser, ProfileChanges, User};
use crate::db::{DbConnection, lock_active_admins, throttles, write_transaction};
use crate::db::{challenges, email_links, passkeys, second_factors, sessions};
use crate::domain::Role;
use crate::mail::links::Purpose;
use crate::mail::{Notice, Outbox, Recipient};

/// Where a user's mail goes.
pub(super) fn recipient(user: &User) -> Recipient<'_> {
    Recipient::of(user)
}

pub(super) fn load(conn: &mut DbConnection, id: i64) -> Result<User, AccountError> {
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
        let user = insert_account(conn, account, password_hash, must_change_password)?;
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

/// The row of a new account (inside the caller's transaction).
pub(super) fn insert_account(
    conn: &mut DbConnection,
    account: &ValidAccount,
    password_hash: &str,
    must_change_password: bool,
) -> Result<User, AccountError> {
    Ok(users::insert(
        conn,
        &NewUser {
            username: &account.username,
            email: &account.email,
            display_name: &account.display_name,
            password_hash,
            role: account.role,
            must_change_password,
        },
    )?)
}

/// Applies profile changes (an admin editing a user, or a user editing themself) and records
/// which fields changed.
pub fn update_profile(
    conn: &mut DbConnection,
    outbox: &Outbox,
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
            ("username", before.username.as_str(), after.username.as_str()),
            ("email", before.email.as_str(), after.email.as_str()),
            ("display name", before.display_name.as_str(), after.display_name.as_str()),
            ("time zone", before.time_zone.name(), after.time_zone.name()),
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
        if before.email != after.email {
            // The old address hears of it; after an administrator's change, the new one too.
            let by_admin = actor.user.as_ref().is_none_or(|(actor_id, _)| *actor_id != id);
            let notice = || Notice::EmailChanged {
                old_address: before.email.to_string(),
                new_address: after.email.to_string(),
                by_admin,
            };
            outbox.queue(conn, recipient(&before), &crate::mail::Mail::Notice(notice()))?;
            if by_admin {
                outbox.queue(conn, recipient(&after), &crate::mail::Mail::Notice(notice()))?;
            }
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

/// A password about to be stored: its hash, and whether it is a one-time password the user must
/// replace at their next sign-in.
#[derive(Clone, Copy)]
pub(super) struct NewHash<'a> {
    pub hash: &'a str,
    pub must_change: bool,
}

/// Stores a new password hash and ends the user's sessions, all but `keep_session` (the one
/// the user changed it from). `action` names the event: an admin's reset, the user's own
/// change, or the forced change after a one-time password.
pub(super) fn set_password(
    conn: &mut DbConnection,
    outbox: &Outbox,
    actor: &Actor,
    id: i64,
    new: NewHash<'_>,
    action: Action,
    keep_session: Option<String>,
) -> Result<User, AccountError> {
    write_transaction(conn, |conn| {
        let user = load(conn, id)?;
        if new.must_change && actor.user.as_ref().is_some_and(|(actor_id, _)| *actor_id == id) {
            // A one-time password for yourself would sign you out of the choice of your own.
            return Err(AccountError::Refused(
                "You cannot reset your own password to a one-time password. Change it on your account page, \
                 where your current password is asked for."
                    .to_owned(),
            ));
        }
        store_password(conn, outbox, actor, &user, new, action, keep_session)?;
        load(conn, id)
    })
}

/// Inside a transaction: the new hash, the user's sessions ended (but `keep_session`), reset
/// links voided, the audit row, and the notice.
pub(super) fn store_password(
    conn: &mut DbConnection,
    outbox: &Outbox,
    actor: &Actor,
    user: &User,
    new: NewHash<'_>,
    action: Action,
    keep_session: Option<String>,
) -> Result<(), AccountError> {
    users::set_password_hash(conn, user.id, new.hash, new.must_change)?;
    let ended = sessions::end_all_of_user(conn, user.id, keep_session)?;
    email_links::void_all(conn, user.id, Purpose::PasswordReset.as_str(), users::now())?;
    audit::record(conn, actor, action, Some((user.id, &user.username)), &ended)?;
    let how = match action {
        Action::UserPasswordReset => "an administrator reset it to a one-time password",
        Action::PasswordResetByLink => "with a reset link sent to this address",
        Action::PasswordForcedChange => "you chose it after a one-time password",
        _ => "on your account page",
    };
    outbox.notify(conn, recipient(user), NoticeKind::Password, Notice::PasswordChanged { how })?;
    Ok(())
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

/// For a user who lost their second factor: removes their authenticator app, recovery codes
/// and pending sign-ins, and ends their sessions. If the policy covers them they must enrol
/// again at their next sign-in.
pub fn reset_second_factor(
    conn: &mut DbConnection,
    outbox: &Outbox,
    actor: &Actor,
    id: i64,
) -> Result<User, AccountError> {
    write_transaction(conn, |conn| {
        let user = load(conn, id)?;
        // Like disabling yourself: a stolen admin session must not strip its own account's
        // second factors (the account page does that, with the password).
        ensure_not_self(actor, &user, "reset two-step sign-in of")?;
        let had_app = second_factors::delete_totp(conn, id)?;
        let codes = second_factors::delete_recovery_codes(conn, id)?;
        let keys = passkeys::delete_all_of_user(conn, id)?;
        challenges::delete_all_of_user(conn, id)?;
        second_factors::set_enabled(conn, id, false)?;
        let ended = sessions::end_all_of_user(conn, id, None)?;
        let mut details = vec![format!(
            "authenticator app {}; {codes} recovery code(s) and {keys} passkey(s) removed",
            if had_app { "removed" } else { "none" }
        )];
        if !ended.is_empty() {
            details.push(ended);
        }
        audit::record(conn, actor, Action::UserMfaReset, Some((user.id, &user.username)), &details.join("; "))?;
        let what = "Every method (authenticator app, recovery codes and passkeys), by an administrator,".to_owned();
        outbox.notify(conn, recipient(&user), NoticeKind::SecondFactor, Notice::SecondFactorRemoved { what })?;
        load(conn, id)
    })
}
