//! `Authenticated`: a caller whose token checked out, with everything the token says.
use std::time::Duration;

use super::tokens::{Audience, Claims};
use crate::db::audit::Actor;
use crate::domain::{Role, TimeZone};

/// A caller whose token checked out: everything the token says, no database needed.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub user_id: i64,
    pub username: String,
    pub display_name: String,
    pub email: String,
    pub role: Role,
    pub must_change_password: bool,
    /// Covered by the second-factor policy without a second factor: may only enrol one.
    pub must_enrol: bool,
    /// How the user signed in (RFC 8176 values).
    pub amr: Vec<String>,
    /// Where the user reads times (pages show times in it).
    pub time_zone: TimeZone,
    pub session_id: String,
    /// Unix time.
    pub token_expires_at: i64,
    /// When the person last proved who they are in this session (Unix time, OpenID's
    /// `auth_time`).
    pub auth_time: i64,
    /// The user's groups (names; see `groups_truncated`).
    pub groups: Vec<String>,
    /// The same names, comma-separated (the gate's `Remote-Groups`), made once per token.
    pub groups_joined: String,
    /// The token left some of the user's groups out (they are in very many).
    pub groups_truncated: bool,
    /// When the token was issued (Unix time): a renewal of its session refuses older ones.
    pub issued_at: i64,
    /// Whom the token was for: a gate token opens no page of ours.
    pub audience: Audience,
}

impl Authenticated {
    pub(super) fn from_claims(claims: Claims, audience: Audience) -> Option<Self> {
        Some(Self {
            user_id: claims.user_id()?,
            role: claims.role,
            username: claims.preferred_username,
            display_name: claims.name,
            email: claims.email,
            must_change_password: claims.pwc,
            must_enrol: claims.mfe,
            amr: claims.amr,
            time_zone: TimeZone::from_stored(&claims.zoneinfo),
            session_id: claims.sid,
            token_expires_at: claims.exp,
            auth_time: claims.auth_time,
            groups_joined: claims.groups.join(","),
            groups: claims.groups,
            groups_truncated: claims.groups_truncated,
            issued_at: claims.iat,
            audience,
        })
    }

    /// Whether the person proved who they are within `within` of `now` (Unix time).
    pub fn proved_within(&self, within: Duration, now: i64) -> bool {
        now.saturating_sub(self.auth_time) <= i64::try_from(within.as_secs()).unwrap_or(i64::MAX)
    }

    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// For the audit trail.
    pub fn actor(&self, client_ip: String) -> Actor {
        Actor { user: Some((self.user_id, self.username.to_string())), client_ip: Some(client_ip) }
    }
}
