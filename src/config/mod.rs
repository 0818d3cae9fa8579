//! Typed settings from the environment (and an optional `.env`, loaded by `main`); the
//! signing secret. Every problem is reported as one readable line naming the variable.
mod env;
mod mail;
mod secret;
mod settings;

pub use env::LOG_FILTER;
pub use mail::{MailSettings, NoticeKind, Notices, SmtpSecurity, SmtpSettings};

pub use secret::{JwtSecret, MIN_JWT_SECRET_BYTES, load_or_create_jwt_secret};
pub use settings::{
    DatabaseSettings, DatabaseUrl, DynamicRegistration, ForwardAuthSettings, JwtAlgorithm, MfaPolicy, PublicUrl,
    SessionPolicy, Settings, ThrottlePolicy, TokenSigning, default_static_dir,
};
