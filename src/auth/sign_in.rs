//! Finishing a sign-in, in one place. Every way in — the sign-in form, the token API, the
//! second step, passkeys, an accepted invitation — proves who someone is its own way and then
//! calls [`finish`]: the session (with its audit row and the new-device notice), the device
//! credential, the log line. A refused attempt is audited through [`refused`]. A new way in
//! is a new [`Method`] or [`Channel`], not a copy of this file.
use std::sync::Arc;

use super::client::ClientInfo;
use super::second_factor;
use super::sessions::{Device, SessionTokens, Sessions};
use super::throttle::LoginThrottle;
use crate::db::audit::{self, Action, Actor};
use crate::db::users::User;
use crate::db::{self, DbPool};

/// What a passkey is, as RFC 8176 names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// `hwk`: a security key or a platform authenticator bound to one device.
    Hardware,
    /// `swk`: a synced passkey (a password manager, a cloud keychain).
    Software,
}

impl KeyKind {
    /// From the ceremony's answer (`"swk"`, anything else is hardware-bound).
    pub fn of(amr_value: &str) -> Self {
        if amr_value == "swk" { Self::Software } else { Self::Hardware }
    }
}

/// How a person proved who they are. The session stores it as RFC 8176 `amr` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Password,
    /// A password, then a code (authenticator app or recovery code).
    PasswordAndCode,
    /// A password, then a passkey as the second step.
    PasswordAndPasskey(KeyKind),
    /// A passkey alone (it is two factors in one: the device and its PIN or biometric).
    Passkey(KeyKind),
}

impl Method {
    /// A password, then `second` as the second step.
    pub fn after_password(second: second_factor::Method) -> Self {
        match second {
            second_factor::Method::Totp | second_factor::Method::RecoveryCode => Self::PasswordAndCode,
            second_factor::Method::Passkey(kind) => Self::PasswordAndPasskey(KeyKind::of(kind)),
        }
    }

    /// The session's `amr`, space-separated.
    pub fn amr(self) -> &'static str {
        match self {
            Self::Password => "pwd",
            Self::PasswordAndCode => "pwd otp mfa",
            Self::PasswordAndPasskey(KeyKind::Hardware) => "pwd hwk mfa",
            Self::PasswordAndPasskey(KeyKind::Software) => "pwd swk mfa",
            Self::Passkey(KeyKind::Hardware) => "hwk mfa",
            Self::Passkey(KeyKind::Software) => "swk mfa",
        }
    }
}

/// Which door someone came through: a browser (cookies, device notices) or an API client
/// (tokens in the body).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Browser,
    Api,
}

impl Channel {
    /// As sessions and audit rows record it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Browser => "form",
            Self::Api => "api",
        }
    }
}

/// A person who proved who they are, by `method`.
pub struct Proven {
    pub user: User,
    pub method: Method,
    /// The device credential the check already issued for this account, if it did one.
    pub device_credential: Option<String>,
}

/// Where a sign-in comes from.
pub struct Arrival<'a> {
    pub channel: Channel,
    pub client: &'a ClientInfo,
    /// The device credentials the client presented (cookie or `device_token`), maybe none.
    pub presented_device: &'a str,
}

/// A finished sign-in: the session's tokens and the device credential value to hand back
/// (the new credential first, the client's others for other accounts after it).
pub struct SignedIn {
    pub tokens: SessionTokens,
    pub device_credentials: String,
}

/// The shared machinery a sign-in needs.
#[derive(Clone, Copy)]
pub struct SignInServices<'a> {
    pub pool: &'a DbPool,
    pub sessions: &'a Sessions,
    pub throttle: &'a Arc<LoginThrottle>,
}

/// Starts the session of `proven`, arriving as `arrival`.
pub async fn finish(services: SignInServices<'_>, proven: Proven, arrival: Arrival<'_>) -> anyhow::Result<SignedIn> {
    let SignInServices { pool, sessions, throttle } = services;
    let Proven { user, method, device_credential } = proven;
    let (user_id, now) = (user.id, chrono::Utc::now().timestamp());
    let device = match arrival.channel {
        Channel::Api => Device::ApiClient,
        Channel::Browser if throttle.devices().recognises(arrival.presented_device, user_id, now) => Device::Known,
        Channel::Browser => Device::New,
    };
    let credential = device_credential.unwrap_or_else(|| throttle.devices().issue(user_id, now));
    let tokens = sessions.start(pool, user, arrival.client, arrival.channel, method, device).await?;
    tracing::info!(
        event = "login_ok",
        via = arrival.channel.as_str(),
        amr = method.amr(),
        username = %tokens.authenticated.username,
        client_ip = %arrival.client.ip,
        "login succeeded"
    );
    Ok(SignedIn { tokens, device_credentials: super::device::remember(arrival.presented_device, user_id, credential) })
}

/// A sign-in that was refused, for the audit trail.
pub enum Refusal<'a> {
    /// A name and password (or what came after them) not accepted; `why` adds to "via …".
    Password { known_user: Option<(i64, String)>, login: &'a str, channel: Channel, why: Option<&'static str> },
    /// A passkey ceremony not accepted, and why.
    Passkey { error: String },
}

/// Writes the refusal's audit row (`login.failed` or `passkey.failed`); a success is recorded
/// by [`finish`], with the session.
pub async fn refused(pool: &DbPool, client_ip: String, refusal: Refusal<'_>) -> anyhow::Result<()> {
    let (action, target, details) = match refusal {
        Refusal::Password { known_user, login, channel, why } => {
            let attempted: String = login.chars().take(64).collect();
            let reason = match why {
                Some(why) => format!("via {}; {why}", channel.as_str()),
                None => format!("via {}", channel.as_str()),
            };
            (Action::LoginFailed, known_user, format!("{reason}; login: {attempted}"))
        }
        Refusal::Passkey { error } => (Action::PasskeyFailed, None, format!("passkey refused: {error}")),
    };
    db::run(pool, move |conn| -> anyhow::Result<()> {
        let target = target.as_ref().map(|(id, name)| (*id, name.as_str()));
        Ok(audit::record(conn, &Actor::anonymous(Some(client_ip)), action, target, &details)?)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_method_is_stored_as_its_rfc_8176_values() {
        assert_eq!(Method::Password.amr(), "pwd");
        assert_eq!(Method::after_password(second_factor::Method::Totp).amr(), "pwd otp mfa");
        assert_eq!(Method::after_password(second_factor::Method::RecoveryCode).amr(), "pwd otp mfa");
        assert_eq!(Method::after_password(second_factor::Method::Passkey("swk")).amr(), "pwd swk mfa");
        assert_eq!(Method::after_password(second_factor::Method::Passkey("hwk")).amr(), "pwd hwk mfa");
        assert_eq!(Method::Passkey(KeyKind::of("swk")).amr(), "swk mfa");
        assert_eq!(Method::Passkey(KeyKind::of("hwk")).amr(), "hwk mfa");
    }
}
