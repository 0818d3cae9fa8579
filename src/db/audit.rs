//! The audit trail: admin actions and auth events, written in the transaction of the change.
use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConnection;
use super::schema::audit_events;
use super::users::{User, now};

#[derive(Debug, Clone, Queryable)]
pub struct AuditEvent {
    pub id: i64,
    pub occurred_at: NaiveDateTime,
    pub actor_id: Option<i64>,
    pub actor_username: Option<String>,
    pub action: String,
    pub target_id: Option<i64>,
    pub target_username: Option<String>,
    pub client_ip: Option<String>,
    pub details: String,
}

/// Who acted and from where. `None` user: an anonymous or failed login, or the CLI.
#[derive(Clone, Default)]
pub struct Actor {
    pub user: Option<(i64, String)>,
    pub client_ip: Option<String>,
}

impl Actor {
    pub fn user(user: &User, client_ip: Option<String>) -> Self {
        Self { user: Some((user.id, user.username.to_string())), client_ip }
    }

    pub fn anonymous(client_ip: Option<String>) -> Self {
        Self { user: None, client_ip }
    }

    /// The command line, run by whoever has shell access.
    pub fn command_line() -> Self {
        Self { user: None, client_ip: Some("cli".to_owned()) }
    }
}

/// What an audit event records. Stored as its code (`user.delete`); admins read it in words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    LoginOk,
    LoginFailed,
    Logout,
    SessionRevoke,
    SessionRevokeAll,
    SessionRevokeOthers,
    SessionRefreshReused,
    PasswordChange,
    PasswordForcedChange,
    PasswordCheckFailed,
    UserCreate,
    UserUpdate,
    UserEnable,
    UserDisable,
    UserDelete,
    UserPasswordReset,
    UserThrottleCleared,
    UserEmailChangeRefused,
    UserImport,
    LoginSecondStepFailed,
    RecoveryCodeUsed,
    MfaEnabled,
    MfaDisabled,
    RecoveryCodesRegenerated,
    UserMfaReset,
    PasskeyAdded,
    PasskeyRenamed,
    PasskeyRemoved,
    PasskeyCloneWarning,
    PasskeyFailed,
    PasswordResetRequested,
    PasswordResetByLink,
    UserInvite,
    InvitationResent,
    InvitationRevoked,
    InvitationAccepted,
    EmailChangeRequested,
    EmailChangeConfirmed,
    SigningKeyRotated,
    GroupCreate,
    GroupUpdate,
    GroupDelete,
    GroupMembersAdd,
    GroupMembersRemove,
    GroupManagersChange,
    AppCreate,
    AppUpdate,
    AppEnable,
    AppDisable,
    AppDelete,
    AppSecretRotated,
    AppRegistered,
    AppApproved,
    RegistrationTokenIssued,
    AppAuthFailed,
    AppCodeReused,
    AppRefreshReused,
    AppConsent,
    AppDisconnect,
}

impl Action {
    pub const ALL: [Action; 59] = [
        Self::LoginOk,
        Self::LoginFailed,
        Self::Logout,
        Self::SessionRevoke,
        Self::SessionRevokeAll,
        Self::SessionRevokeOthers,
        Self::SessionRefreshReused,
        Self::PasswordChange,
        Self::PasswordForcedChange,
        Self::PasswordCheckFailed,
        Self::UserCreate,
        Self::UserUpdate,
        Self::UserEnable,
        Self::UserDisable,
        Self::UserDelete,
        Self::UserPasswordReset,
        Self::UserThrottleCleared,
        Self::UserEmailChangeRefused,
        Self::UserImport,
        Self::LoginSecondStepFailed,
        Self::RecoveryCodeUsed,
        Self::MfaEnabled,
        Self::MfaDisabled,
        Self::RecoveryCodesRegenerated,
        Self::UserMfaReset,
        Self::PasskeyAdded,
        Self::PasskeyRenamed,
        Self::PasskeyRemoved,
        Self::PasskeyCloneWarning,
        Self::PasskeyFailed,
        Self::PasswordResetRequested,
        Self::PasswordResetByLink,
        Self::UserInvite,
        Self::InvitationResent,
        Self::InvitationRevoked,
        Self::InvitationAccepted,
        Self::EmailChangeRequested,
        Self::EmailChangeConfirmed,
        Self::SigningKeyRotated,
        Self::GroupCreate,
        Self::GroupUpdate,
        Self::GroupDelete,
        Self::GroupMembersAdd,
        Self::GroupMembersRemove,
        Self::GroupManagersChange,
        Self::AppCreate,
        Self::AppUpdate,
        Self::AppEnable,
        Self::AppDisable,
        Self::AppDelete,
        Self::AppSecretRotated,
        Self::AppRegistered,
        Self::AppApproved,
        Self::RegistrationTokenIssued,
        Self::AppAuthFailed,
        Self::AppCodeReused,
        Self::AppRefreshReused,
        Self::AppConsent,
        Self::AppDisconnect,
    ];

    /// The stored code (stable: filters, exports and old rows use it).
    pub fn code(self) -> &'static str {
        self.entry().0
    }

    /// What it means, for people.
    pub fn describe(self) -> &'static str {
        self.entry().1
    }

    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|action| action.code() == code)
    }

    fn entry(self) -> (&'static str, &'static str) {
        match self {
            Self::LoginOk => ("login.ok", "Signed in"),
            Self::LoginFailed => ("login.failed", "Sign-in refused"),
            Self::Logout => ("logout", "Signed out"),
            Self::SessionRevoke => ("session.revoke", "Signed out a session"),
            Self::SessionRevokeAll => ("session.revoke_all", "Signed out everywhere"),
            Self::SessionRevokeOthers => ("session.revoke_others", "Signed out the other sessions"),
            Self::SessionRefreshReused => ("session.refresh_reused", "Stolen refresh token detected; session ended"),
            Self::PasswordChange => ("password.change", "Changed their password"),
            Self::PasswordForcedChange => ("password.forced_change", "Chose a password after a one-time one"),
            Self::PasswordCheckFailed => ("password.check_failed", "Wrong current password"),
            Self::UserCreate => ("user.create", "Added a user"),
            Self::UserUpdate => ("user.update", "Changed a user's details"),
            Self::UserEnable => ("user.enable", "Enabled a user"),
            Self::UserDisable => ("user.disable", "Disabled a user"),
            Self::UserDelete => ("user.delete", "Deleted a user"),
            Self::UserPasswordReset => ("user.password_reset", "Reset a password"),
            Self::UserThrottleCleared => ("user.throttle_cleared", "Cleared a sign-in pause"),
            Self::UserEmailChangeRefused => ("user.email_change_refused", "Tried an e-mail address in use"),
            Self::UserImport => ("user.import", "Imported users"),
            Self::LoginSecondStepFailed => ("login.second_step_failed", "Wrong code at the second sign-in step"),
            Self::RecoveryCodeUsed => ("mfa.recovery_code_used", "Signed in with a recovery code"),
            Self::MfaEnabled => ("mfa.enable", "Turned on two-step sign-in"),
            Self::MfaDisabled => ("mfa.disable", "Turned off two-step sign-in"),
            Self::RecoveryCodesRegenerated => ("mfa.recovery_codes_regenerated", "Made new recovery codes"),
            Self::UserMfaReset => ("user.mfa_reset", "Reset a user's two-step sign-in"),
            Self::PasskeyAdded => ("passkey.add", "Added a passkey"),
            Self::PasskeyRenamed => ("passkey.rename", "Renamed a passkey"),
            Self::PasskeyRemoved => ("passkey.remove", "Removed a passkey"),
            Self::PasskeyCloneWarning => ("passkey.clone_warning", "A passkey that may have been copied was refused"),
            Self::PasskeyFailed => ("login.passkey_failed", "Sign-in with a passkey refused"),
            Self::PasswordResetRequested => ("password.reset_requested", "Asked for a password reset link"),
            Self::PasswordResetByLink => ("password.reset_by_link", "Chose a new password with a reset link"),
            Self::UserInvite => ("user.invite", "Invited a user by e-mail"),
            Self::InvitationResent => ("user.invitation_resent", "Sent an invitation again"),
            Self::InvitationRevoked => ("user.invitation_revoked", "Revoked an invitation"),
            Self::InvitationAccepted => ("user.invitation_accepted", "Accepted an invitation"),
            Self::EmailChangeRequested => ("user.email_change_requested", "Asked to change their e-mail address"),
            Self::EmailChangeConfirmed => ("user.email_change_confirmed", "Confirmed a new e-mail address"),
            Self::SigningKeyRotated => ("keys.rotate", "Made a new token signing key"),
            Self::GroupCreate => ("group.create", "Created a group"),
            Self::GroupUpdate => ("group.update", "Renamed or described a group"),
            Self::GroupDelete => ("group.delete", "Deleted a group"),
            Self::GroupMembersAdd => ("group.members_add", "Added members to a group"),
            Self::GroupMembersRemove => ("group.members_remove", "Removed members from a group"),
            Self::GroupManagersChange => ("group.managers", "Changed who manages a group"),
            Self::AppCreate => ("app.create", "Added an app (OpenID Connect)"),
            Self::AppUpdate => ("app.update", "Changed an app's settings"),
            Self::AppEnable => ("app.enable", "Enabled an app"),
            Self::AppDisable => ("app.disable", "Disabled an app"),
            Self::AppDelete => ("app.delete", "Deleted an app"),
            Self::AppSecretRotated => ("app.secret_rotated", "Made a new secret for an app"),
            Self::AppRegistered => ("app.registered", "An app registered itself"),
            Self::AppApproved => ("app.approved", "Approved an app that registered itself"),
            Self::RegistrationTokenIssued => {
                ("app.registration_token", "Issued a token with which apps may register themselves")
            }
            Self::AppAuthFailed => ("app.auth_failed", "An app's secret was wrong"),
            Self::AppCodeReused => ("app.code_reused", "An authorization code came back; its tokens were revoked"),
            Self::AppRefreshReused => {
                ("app.refresh_reused", "An app's stolen refresh token was detected; its tokens were revoked")
            }
            Self::AppConsent => ("app.consent", "Let an app sign them in"),
            Self::AppDisconnect => ("app.disconnect", "Disconnected an app"),
        }
    }
}

#[derive(Insertable)]
#[diesel(table_name = audit_events)]
struct NewAuditEvent<'a> {
    occurred_at: NaiveDateTime,
    actor_id: Option<i64>,
    actor_username: Option<&'a str>,
    action: &'a str,
    target_id: Option<i64>,
    target_username: Option<&'a str>,
    client_ip: Option<&'a str>,
    details: &'a str,
}

/// `details` is plain text meant for people ("role: user → admin"); never a password or hash.
pub fn record(
    conn: &mut DbConnection,
    actor: &Actor,
    action: Action,
    target: Option<(i64, &str)>,
    details: &str,
) -> QueryResult<()> {
    diesel::insert_into(audit_events::table)
        .values(NewAuditEvent {
            occurred_at: now(),
            actor_id: actor.user.as_ref().map(|(id, _)| *id),
            actor_username: actor.user.as_ref().map(|(_, name)| name.as_str()),
            action: action.code(),
            target_id: target.map(|(id, _)| id),
            target_username: target.map(|(_, name)| name),
            client_ip: actor.client_ip.as_deref(),
            details,
        })
        .execute(conn)?;
    Ok(())
}

#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub actor_id: Option<i64>,
    pub target_id: Option<i64>,
    /// Events older than this id (the next page).
    pub before_id: Option<i64>,
    /// One action (its code).
    pub action: Option<String>,
    /// Events at or after this moment, and before that one.
    pub from: Option<NaiveDateTime>,
    pub until: Option<NaiveDateTime>,
}

/// Newest first, `size` events and whether there are more.
pub fn page(conn: &mut DbConnection, filter: &AuditFilter, size: i64) -> QueryResult<(Vec<AuditEvent>, bool)> {
    let mut query = audit_events::table.into_boxed();
    if let Some(actor) = filter.actor_id {
        query = query.filter(audit_events::actor_id.eq(actor));
    }
    if let Some(target) = filter.target_id {
        query = query.filter(audit_events::target_id.eq(target));
    }
    if let Some(before) = filter.before_id {
        query = query.filter(audit_events::id.lt(before));
    }
    if let Some(action) = &filter.action {
        query = query.filter(audit_events::action.eq(action.clone()));
    }
    if let Some(from) = filter.from {
        query = query.filter(audit_events::occurred_at.ge(from));
    }
    if let Some(until) = filter.until {
        query = query.filter(audit_events::occurred_at.lt(until));
    }
    let mut events: Vec<AuditEvent> = query.order(audit_events::id.desc()).limit(size + 1).load(conn)?;
    let more = events.len() as i64 > size;
    events.truncate(usize::try_from(size).unwrap_or(0));
    Ok((events, more))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_has_its_own_code_and_words_and_reads_back() {
        let codes: std::collections::HashSet<&str> = Action::ALL.iter().map(|action| action.code()).collect();
        assert_eq!(codes.len(), Action::ALL.len(), "codes are unique");
        for action in Action::ALL {
            assert_eq!(Action::from_code(action.code()), Some(action));
            assert!(!action.describe().is_empty());
        }
        assert_eq!(Action::from_code("no.such"), None);
    }
}
