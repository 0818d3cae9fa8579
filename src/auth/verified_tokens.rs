//! A bounded memo of access tokens that already passed the full check (signature, header,
//! claims), so a client sending the same token again is recognised by one hash-map lookup
//! instead of base64, JSON and HMAC work. Only an exact, byte-for-byte copy of a verified token
//! hits; expiry is checked on every hit, and the revoked list is consulted by the caller each
//! time, so the memo changes what is computed, never what is accepted.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::authenticated::Authenticated;
use super::tokens::LEEWAY;

/// What the memo keeps for a verified token: when it expires (Unix time).
pub(super) trait Expires {
    fn expires_at(&self) -> i64;
}

impl Expires for Authenticated {
    fn expires_at(&self) -> i64 {
        self.token_expires_at
    }
}

/// Enough for every active client of a busy instance; a full memo drops expired entries
/// first, and everything if that is not enough (the next request re-verifies).
const CAPACITY: usize = 4096;

/// Keys are whole tokens (hundreds of bytes) and only ever ones that passed the full check, so
/// nobody can choose them to collide: a fast seeded hash instead of SipHash.
pub(super) struct VerifiedTokens<T = Authenticated> {
    entries: Mutex<HashMap<Box<str>, Entry<T>, foldhash::fast::RandomState>>,
}

impl<T> Default for VerifiedTokens<T> {
    fn default() -> Self {
        Self { entries: Mutex::default() }
    }
}

struct Entry<T> {
    caller: Arc<T>,
    /// Until when the key that verified the token verifies (`None`: while it is configured).
    key_until: Option<i64>,
}

fn still_valid<T: Expires>(entry: &Entry<T>, now: i64) -> bool {
    now < entry.caller.expires_at().saturating_add(LEEWAY.as_secs() as i64)
        && entry.key_until.is_none_or(|until| now < until)
}

impl<T: Expires> VerifiedTokens<T> {
    /// The caller `token` was verified for, unless it was never verified or has expired since.
    pub(super) fn get(&self, token: &str, now: i64) -> Option<Arc<T>> {
        let entries = self.entries.lock().ok()?;
        entries.get(token).filter(|found| still_valid(found, now)).map(|found| Arc::clone(&found.caller))
    }

    /// Forgets every token (the keys changed: each must pass the full check again).
    pub(super) fn clear(&self) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.clear();
        }
    }

    /// Records a token that has just passed the full check, by a key that verifies until
    /// `key_until` (then it is forgotten, whatever the token's own expiry says).
    pub(super) fn remember(&self, token: &str, authenticated: &Arc<T>, now: i64, key_until: Option<i64>) {
        let Ok(mut entries) = self.entries.lock() else { return };
        if entries.len() >= CAPACITY {
            entries.retain(|_, entry| still_valid(entry, now));
            if entries.len() >= CAPACITY / 2 {
                entries.clear();
            }
        }
        entries.insert(token.into(), Entry { caller: Arc::clone(authenticated), key_until });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Role;

    fn caller(expires_at: i64) -> Arc<Authenticated> {
        Arc::new(Authenticated {
            user_id: 1,
            username: "ada".into(),
            display_name: "Ada".into(),
            email: "ada@example.com".into(),
            role: Role::User,
            must_change_password: false,
            must_enrol: false,
            amr: vec!["pwd".to_owned()],
            time_zone: crate::domain::TimeZone::UTC,
            session_id: "s1".into(),
            token_expires_at: expires_at,
            auth_time: 0,
            groups: Vec::new(),
            groups_joined: String::new(),
            groups_truncated: false,
            issued_at: 0,
            audience: crate::auth::tokens::Audience::Portcullis,
        })
    }

    #[test]
    fn only_the_exact_token_hits_and_only_until_it_expires() {
        let memo = VerifiedTokens::default();
        memo.remember("a.b.c", &caller(1_000), 900, None);
        assert!(memo.get("a.b.c", 900).is_some());
        assert!(memo.get("a.b.C", 900).is_none(), "one character off is a miss");
        assert!(memo.get("a.b.c ", 900).is_none());
        assert!(memo.get("a.b.c", 1_000 + LEEWAY.as_secs() as i64).is_none(), "expired: a miss");
    }

    #[test]
    fn a_token_is_forgotten_when_its_key_stops_verifying_even_if_it_has_not_expired() {
        let memo = VerifiedTokens::default();
        memo.remember("a.b.c", &caller(10_000), 900, Some(1_000));
        assert!(memo.get("a.b.c", 999).is_some());
        assert!(memo.get("a.b.c", 1_000).is_none(), "the key has left: the token must be checked again");
    }

    #[test]
    fn a_full_memo_forgets_expired_entries_first_and_stays_bounded() {
        let memo = VerifiedTokens::default();
        for n in 0..CAPACITY {
            memo.remember(&format!("old{n}"), &caller(100), 50, None);
        }
        memo.remember("fresh", &caller(10_000), 5_000, None);
        assert!(memo.get("fresh", 5_000).is_some());
        assert_eq!(memo.entries.lock().unwrap().len(), 1, "expired entries were dropped");
        for n in 0..CAPACITY * 2 {
            memo.remember(&format!("live{n}"), &caller(10_000), 5_000, None);
        }
        assert!(memo.entries.lock().unwrap().len() <= CAPACITY);
    }
}
