//! Finishing a sign-in, in one place. Every way in — the sign-in form, the token API, the
//! second step, passkeys, an accepted invitation — proves who someone is its own way and then
//! calls [`finish`]: the session (with its audit row and the new-device notice), the device
//! credential, the log line. A refused attempt is audited through [`refused`]. A new way in
//! is a new [`Method`] or [`Channel`], not a copy of this file.
use std::sync::Arc;

use super::client::ClientInfo;
pub use super::proof::{Channel, KeyKind, Method};
use super::sessions::{Device, SessionTokens, Sessions};
use super::throttle::LoginThrottle;
use crate::db::audit::{self, Action, Actor};
use crate::db::users::User;
use crate::db::{self, DbPool};

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
    use crate::auth::second_factor;

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
