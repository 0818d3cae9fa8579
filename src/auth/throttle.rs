//! Throttling password attempts, per sign-in name and per client address, with counters in
//! the database so every instance shares them. One set of counters serves the login form and
//! `POST /api/token`.
//!
//! An attempt is counted *before* its password is checked, so a burst of parallel guesses is
//! counted in full. When a key reaches its limit within the window it is paused; each pause
//! lasts twice the one before (up to the maximum) until a whole window passes quietly. A
//! paused key gets 429 whatever the password — an existing account and a made-up name alike,
//! so the pause tells nothing about who exists.
use std::time::Duration;

use chrono::NaiveDateTime;

use crate::config::ThrottlePolicy;
use crate::db::throttles::{self, Throttle};
use crate::db::{DbConnection, write_transaction};

/// Counter rows idle this long are deleted (longer than any window plus any pause allows).
pub const FORGET_AFTER: chrono::Duration = chrono::Duration::days(2);
const MAX_NAME_CHARS: usize = 64;

/// The counter for a sign-in: the account when the name (or email) matches one, so both ways
/// of naming it share one budget; otherwise the name as typed.
pub fn account_key(user_id: Option<i64>, login: &str) -> String {
    match user_id {
        Some(id) => format!("user:{id}"),
        None => format!("name:{}", login.trim().to_lowercase().chars().take(MAX_NAME_CHARS).collect::<String>()),
    }
}

pub fn address_key(client_ip: &str) -> String {
    format!("ip:{client_ip}")
}

/// Counts one attempt against both keys, or refuses it with how long to wait.
pub fn begin_attempt(
    conn: &mut DbConnection,
    policy: &ThrottlePolicy,
    account: &str,
    address: &str,
    now: NaiveDateTime,
) -> diesel::QueryResult<Result<(), Duration>> {
    write_transaction(conn, |conn| {
        let keys = [account.to_owned(), address.to_owned()];
        let rows = throttles::lock(conn, &keys, now)?;
        let wait = rows.iter().filter_map(|row| row.paused_until).filter(|until| *until > now).max();
        if let Some(until) = wait {
            return Ok(Err(round_up_to_seconds(until - now)));
        }
        for mut row in rows {
            let limit = if row.throttle_key == account { policy.account_attempts } else { policy.address_attempts };
            count(&mut row, policy, limit, now);
            throttles::save(conn, &row)?;
        }
        Ok(Ok(()))
    })
}

/// A correct password resets its account's counter (never the address's: an attacker must not
/// reset their budget by signing in to an account of their own).
pub fn succeeded(conn: &mut DbConnection, account: &str) -> diesel::QueryResult<()> {
    throttles::clear(conn, account).map(|_| ())
}

/// How an account's counter stands, for its admin page.
pub struct Standing {
    pub paused_until: Option<NaiveDateTime>,
    pub recent_failures: i32,
}

pub fn standing(conn: &mut DbConnection, user_id: i64, now: NaiveDateTime) -> diesel::QueryResult<Option<Standing>> {
    Ok(throttles::find(conn, &account_key(Some(user_id), ""))?.map(|row| Standing {
        paused_until: row.paused_until.filter(|until| *until > now),
        recent_failures: row.attempts,
    }))
}

fn count(row: &mut Throttle, policy: &ThrottlePolicy, limit: u32, now: NaiveDateTime) {
    let window = chrono::Duration::from_std(policy.window).unwrap_or(chrono::Duration::MAX);
    if now - row.window_started_at >= window {
        row.attempts = 0;
        row.window_started_at = now;
    }
    // A whole window without a pause: the escalation starts over.
    if row.paused_until.is_some_and(|until| now - until >= window) {
        row.strikes = 0;
        row.paused_until = None;
    }
    row.attempts += 1;
    if u32::try_from(row.attempts).unwrap_or(u32::MAX) >= limit {
        row.paused_until = Some(now + pause_length(policy, row.strikes));
        row.strikes = row.strikes.saturating_add(1);
        row.attempts = 0;
        row.window_started_at = now;
    }
}

fn pause_length(policy: &ThrottlePolicy, strikes: i32) -> chrono::Duration {
    let doubled = policy.pause.saturating_mul(1u32 << strikes.clamp(0, 20));
    chrono::Duration::from_std(doubled.min(policy.max_pause)).unwrap_or(chrono::Duration::MAX)
}

fn round_up_to_seconds(wait: chrono::Duration) -> Duration {
    let wait = wait.to_std().unwrap_or_default();
    Duration::from_secs(wait.as_secs() + u64::from(wait.subsec_nanos() > 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(now: NaiveDateTime) -> Throttle {
        Throttle { throttle_key: "k".into(), attempts: 0, window_started_at: now, strikes: 0, paused_until: None }
    }

    #[test]
    fn the_limit_th_attempt_pauses_and_each_pause_doubles_up_to_the_maximum() {
        let policy = ThrottlePolicy::default();
        let start = chrono::Utc::now().naive_utc();
        let mut throttle = row(start);
        for _ in 0..4 {
            count(&mut throttle, &policy, 5, start);
            assert!(throttle.paused_until.is_none());
        }
        count(&mut throttle, &policy, 5, start);
        assert_eq!(throttle.paused_until, Some(start + chrono::Duration::minutes(1)));

        let mut pauses = Vec::new();
        for _ in 0..6 {
            let now = throttle.paused_until.unwrap();
            for _ in 0..5 {
                count(&mut throttle, &policy, 5, now);
            }
            pauses.push((throttle.paused_until.unwrap() - now).num_minutes());
        }
        assert_eq!(pauses, [2, 4, 8, 15, 15, 15]);

        // A quiet window later, the escalation starts over.
        let later = throttle.paused_until.unwrap() + chrono::Duration::minutes(15);
        for _ in 0..5 {
            count(&mut throttle, &policy, 5, later);
        }
        assert_eq!(throttle.paused_until, Some(later + chrono::Duration::minutes(1)));
    }

    #[test]
    fn failures_spread_over_more_than_a_window_never_pause() {
        let policy = ThrottlePolicy::default();
        let mut now = chrono::Utc::now().naive_utc();
        let mut throttle = row(now);
        for _ in 0..20 {
            count(&mut throttle, &policy, 5, now);
            now += chrono::Duration::minutes(4);
        }
        assert!(throttle.paused_until.is_none());
    }

    #[test]
    fn names_are_compared_as_typed_but_case_blind_and_bounded() {
        assert_eq!(account_key(None, " Alice "), "name:alice");
        assert_eq!(account_key(Some(7), "alice"), "user:7");
        assert_eq!(account_key(None, &"x".repeat(500)).len(), "name:".len() + MAX_NAME_CHARS);
    }
}
