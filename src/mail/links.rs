//! The links we mail: a 256-bit token in the URL, only its SHA-256 stored, each purpose with
//! its lifetime. A new link of a purpose voids the user's older ones.
use aws_lc_rs::digest;
use chrono::NaiveDateTime;

use crate::db::DbConnection;
use crate::db::email_links::{self, EmailLink, NewLink};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    PasswordReset,
    Invitation,
    EmailChange,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PasswordReset => "password_reset",
            Self::Invitation => "invitation",
            Self::EmailChange => "email_change",
        }
    }

    pub fn lifetime(self) -> chrono::Duration {
        match self {
            Self::PasswordReset => chrono::Duration::minutes(30),
            Self::Invitation => chrono::Duration::days(7),
            Self::EmailChange => chrono::Duration::hours(24),
        }
    }

    /// The page the link opens.
    pub const fn path(self) -> &'static str {
        match self {
            Self::PasswordReset => "/password/reset",
            Self::Invitation => "/invitation",
            Self::EmailChange => "/email/confirm",
        }
    }
}

/// 32 random bytes, URL-safe base64 (43 characters).
const TOKEN_BYTES: usize = 32;
const TOKEN_CHARS: usize = 43;

pub fn hash(token: &str) -> String {
    let digest = digest::digest(&digest::SHA256, format!("portcullis mail link v1:{token}").as_bytes());
    digest.as_ref().iter().map(|byte| format!("{byte:02x}")).collect()
}

/// A token of the right shape, or `None` (so garbage never reaches a query).
pub fn parse_token(raw: &str) -> Option<&str> {
    let raw = raw.trim();
    (raw.len() == TOKEN_CHARS && raw.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_'))
        .then_some(raw)
}

/// Stores a new link (voiding the user's older live ones of this purpose) and returns its
/// token, which exists only in the message from now on.
pub fn issue(
    conn: &mut DbConnection,
    purpose: Purpose,
    user_id: i64,
    new_email: Option<&str>,
    now: NaiveDateTime,
) -> diesel::QueryResult<String> {
    email_links::void_all(conn, user_id, purpose.as_str(), now)?;
    let token = crate::random::token_base64(TOKEN_BYTES);
    email_links::insert(
        conn,
        &NewLink {
            token_hash: &hash(&token),
            purpose: purpose.as_str(),
            user_id,
            new_email,
            created_at: now,
            expires_at: now + purpose.lifetime(),
        },
    )?;
    Ok(token)
}

/// What a presented link is worth.
#[derive(Debug)]
pub enum LinkState {
    Live(EmailLink),
    Used,
    Expired,
    /// Replaced by a newer link, revoked, or made moot by a password change.
    Voided,
    Unknown,
}

impl LinkState {
    /// Why a link does not work, in words for its page.
    pub fn problem(&self) -> &'static str {
        match self {
            Self::Live(_) => "This link works.",
            Self::Used => "This link has been used already. Each link works once.",
            Self::Expired => "This link has expired.",
            Self::Voided => "This link no longer works: a newer one was sent, or the password has changed since.",
            Self::Unknown => "This link is not valid. Check that you copied the whole address from the message.",
        }
    }
}

pub fn check(
    conn: &mut DbConnection,
    token: &str,
    purpose: Purpose,
    now: NaiveDateTime,
) -> diesel::QueryResult<LinkState> {
    let Some(token) = parse_token(token) else { return Ok(LinkState::Unknown) };
    let Some(link) = email_links::find(conn, &hash(token))? else { return Ok(LinkState::Unknown) };
    Ok(if link.purpose != purpose.as_str() {
        LinkState::Unknown
    } else if link.used_at.is_some() {
        LinkState::Used
    } else if link.voided_at.is_some() {
        LinkState::Voided
    } else if link.expires_at <= now {
        LinkState::Expired
    } else {
        LinkState::Live(link)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_token_shaped_input_is_looked_up() {
        let token = crate::random::token_base64(TOKEN_BYTES);
        assert_eq!(parse_token(&token), Some(token.as_str()));
        assert!(parse_token("short").is_none());
        assert!(parse_token(&format!("{}'", &token[..42])).is_none());
        assert_ne!(hash(&token), token);
        assert_eq!(hash(&token).len(), 64);
    }
}
