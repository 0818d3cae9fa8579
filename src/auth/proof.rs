//! How someone proved who they are ([`Method`], stored as RFC 8176 `amr` values) and through
//! which door they came ([`Channel`]): what a session records of its sign-in.
use super::second_factor;

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
