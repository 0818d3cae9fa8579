//! Throttling password checks (sign-in on the form and the API, the current-password check on
//! the account page) and other probes, with counters in the database so every instance shares
//! them.
//!
//! Which counters an attempt uses:
//! - from a client that carries a device credential for the account (see `device.rs`): only
//!   that device's own counter, so strangers guessing can never lock the owner out;
//! - from any other client: the account's counter (or, for a name no account has, one of
//!   65,536 buckets chosen by a keyed hash, so made-up names cannot grow the table) and the
//!   client address's counter (IPv6 by its /64, which one subscriber usually holds).
//!
//! An attempt *reserves* one attempt on each of its counters before its password is checked,
//! so a burst of parallel guesses is counted in full. A wrong password keeps the reservation
//! and pauses a counter that has reached its limit; a right one gives the address's
//! reservation back (legitimate sign-ins cost nothing) and clears the account's. Each pause
//! lasts twice the one before (up to the maximum) until a whole window passes quietly. A paused
//! counter refuses with 429 whatever the password, for an existing account and a made-up name
//! alike, and a refused attempt writes nothing.
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::NaiveDateTime;
use unicode_normalization::UnicodeNormalization;

use super::device::DeviceKey;
use crate::config::{JwtSecret, NoticeKind, ThrottlePolicy};
use crate::crypto::keys::DerivedKey;
use crate::db::throttles::{self, Throttle};
use crate::db::{DbConnection, write_transaction};
use crate::mail::{Notice, Outbox, Recipient};

/// Made-up names share this many counters (at most this many rows, whatever is typed).
const NAME_BUCKETS: u32 = 1 << 16;
const MAX_NAME_CHARS: usize = 254;

/// What a counter counts; its budget, what a right answer does to it and whether this instance
/// remembers its pauses all follow from this.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A client's own budget for an account it signed in to before.
    Device,
    /// An account (or a made-up name's bucket), from clients it does not know.
    Account,
    /// A client address.
    Address,
    /// A signed-in user's probes that can tell them about other accounts.
    Probe,
}

impl Kind {
    /// A right answer: the account's (or device's) counter starts over, its owner proved who
    /// they are; an address or probe budget only gets this attempt's reservation back.
    fn resets_on_success(self) -> bool {
        matches!(self, Self::Device | Self::Account)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Counter {
    key: String,
    kind: Kind,
}

/// The counters one attempt is counted on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counters {
    counters: Vec<Counter>,
    /// The name as typed (normalised), under which this instance remembers a pause of the
    /// account's counter for a moment.
    login: Option<String>,
}

impl Counters {
    /// Whether the attempt came from a device that signed in to this account before.
    pub fn known_device(&self) -> bool {
        self.counters.iter().any(|counter| counter.kind == Kind::Device)
    }

    fn keys(&self) -> Vec<String> {
        self.counters.iter().map(|counter| counter.key.clone()).collect()
    }

    fn kind_of(&self, row: &Throttle) -> Option<Kind> {
        self.counters.iter().find(|counter| counter.key == row.throttle_key).map(|counter| counter.kind)
    }
}

/// The throttling policy with its keys; one per application.
pub struct LoginThrottle {
    policy: ThrottlePolicy,
    names: DerivedKey,
    devices: DeviceKey,
    /// Pauses this instance read or set in the last second, by address and by typed name: a
    /// flood of guesses from a paused client is refused without any database work.
    recent_pauses: Mutex<HashMap<String, (NaiveDateTime, Instant)>>,
    /// The owner of a paused account is told (`NoticeKind::SignInPaused`).
    outbox: Arc<Outbox>,
}

/// How long this instance trusts a pause it saw without reading it again (an admin's "clear"
/// on another instance takes effect within this).
const REMEMBER_PAUSES_FOR: Duration = Duration::from_secs(1);
/// Remembered pauses kept at most (a flood from many addresses only costs database reads).
const REMEMBERED_PAUSES: usize = 4096;

impl LoginThrottle {
    pub fn new(policy: ThrottlePolicy, secret: &JwtSecret, previous: Option<&JwtSecret>, outbox: Arc<Outbox>) -> Self {
        Self {
            policy,
            names: DerivedKey::derive(secret, None, b"portcullis name buckets v1"),
            devices: DeviceKey::derive(secret, previous),
            recent_pauses: Mutex::new(HashMap::new()),
            outbox,
        }
    }

    /// A pause this instance saw in the last second on this client's address or on this name,
    /// answered without the database. `None` means the database decides. Never used for a
    /// client carrying a valid device credential (its own counter is what counts).
    pub fn remembered_pause(&self, login: &str, client_ip: &str, device: Option<&str>) -> Option<Duration> {
        let now = chrono::Utc::now();
        if device.is_some_and(|presented| self.devices.verify_any(presented, now.timestamp())) {
            return None;
        }
        let recent = self.recent_pauses.lock().ok()?;
        let now = now.naive_utc();
        [address_key(client_ip), login_key(login)]
            .iter()
            .filter_map(|key| recent.get(key))
            .filter(|(until, learned)| *until > now && learned.elapsed() < REMEMBER_PAUSES_FOR)
            .map(|(until, _)| round_up_to_seconds(*until - now))
            .max()
    }

    /// After an admin cleared a pause: from now on the database decides again.
    pub fn forget_remembered_pauses(&self) {
        if let Ok(mut recent) = self.recent_pauses.lock() {
            recent.clear();
        }
    }

    /// Remembers the pauses among `rows` under the keys `remembered_pause` looks up.
    fn remember_pauses(&self, counters: &Counters, rows: &[Throttle], now: NaiveDateTime) {
        let Ok(mut recent) = self.recent_pauses.lock() else { return };
        if recent.len() >= REMEMBERED_PAUSES {
            recent.clear();
        }
        for row in rows {
            let Some(until) = row.paused_until.filter(|until| *until > now) else { continue };
            let key = match counters.kind_of(row) {
                Some(Kind::Address) => Some(row.throttle_key.clone()),
                Some(Kind::Account) => counters.login.clone(),
                _ => None,
            };
            if let Some(key) = key {
                recent.insert(key, (until, Instant::now()));
            }
        }
    }

    /// The longest pause in force among `rows`, remembered for the next attempts.
    fn pause_in_force(&self, counters: &Counters, rows: &[Throttle], now: NaiveDateTime) -> Option<Duration> {
        let wait = longest_pause(rows, now)?;
        self.remember_pauses(counters, rows, now);
        Some(wait)
    }

    pub fn policy(&self) -> &ThrottlePolicy {
        &self.policy
    }

    pub fn devices(&self) -> &DeviceKey {
        &self.devices
    }

    /// The counters of a password check for `user_id` (or, when no account matched, the name as
    /// typed) from `client_ip`, carrying the device credentials `device` (cookie or API field).
    pub fn password_counters(
        &self,
        user_id: Option<i64>,
        login: &str,
        client_ip: &str,
        device: Option<&str>,
    ) -> Counters {
        let now = chrono::Utc::now().timestamp();
        let known_device = user_id.zip(device).and_then(|(id, presented)| self.devices.verify_for(presented, id, now));
        if let Some(nonce) = known_device {
            let own = Counter { key: format!("device:{nonce}"), kind: Kind::Device };
            return Counters { counters: vec![own], login: None };
        }
        let account = match user_id {
            Some(id) => account_key(id),
            None => self.name_bucket(login),
        };
        Counters {
            counters: vec![
                Counter { key: account, kind: Kind::Account },
                Counter { key: address_key(client_ip), kind: Kind::Address },
            ],
            login: Some(login_key(login)),
        }
    }

    /// The counter of a sign-in that names no account up front (a passkey): the client address.
    pub fn address_counters(&self, client_ip: &str) -> Counters {
        let counter = Counter { key: address_key(client_ip), kind: Kind::Address };
        Counters { counters: vec![counter], login: None }
    }

    /// The budget of a signed-in user's probes that can tell them about other accounts (an
    /// e-mail change that finds the address taken).
    pub fn email_change_counters(&self, user_id: i64) -> Counters {
        let counter = Counter { key: format!("email:{user_id}"), kind: Kind::Probe };
        Counters { counters: vec![counter], login: None }
    }

    /// The counter of an app's secret presented from `client_ip`: wrong secrets pause that
    /// app from that address only, so a stranger cannot stop the app elsewhere.
    pub fn client_counters(&self, client_id: &str, client_ip: &str) -> Counters {
        let counter = Counter { key: format!("app:{client_id}:{}", address_key(client_ip)), kind: Kind::Probe };
        Counters { counters: vec![counter], login: None }
    }

    /// The budget of user codes a signed-in person types at `/device` (RFC 8628 §5.1: codes are
    /// short, so guessing must be slow): wrong ones pause that person, and their address.
    pub fn user_code_counters(&self, user_id: i64, client_ip: &str) -> Counters {
        let counters = vec![
            Counter { key: format!("device:{user_id}"), kind: Kind::Probe },
            Counter { key: format!("device:{}", address_key(client_ip)), kind: Kind::Address },
        ];
        Counters { counters, login: None }
    }

    /// How long the counters are paused for, if they are (a read; nothing reserved).
    pub fn paused(
        &self,
        conn: &mut DbConnection,
        counters: &Counters,
        now: NaiveDateTime,
    ) -> diesel::QueryResult<Option<Duration>> {
        Ok(self.pause_in_force(counters, &throttles::find_many(conn, &counters.keys())?, now))
    }

    /// Reserves one attempt on every counter, or refuses with how long to wait. A refusal by
    /// a pause already in force writes nothing.
    pub fn begin(
        &self,
        conn: &mut DbConnection,
        counters: &Counters,
        now: NaiveDateTime,
    ) -> diesel::QueryResult<Result<(), Duration>> {
        let keys = counters.keys();
        if let Some(wait) = self.pause_in_force(counters, &throttles::find_many(conn, &keys)?, now) {
            return Ok(Err(wait));
        }
        write_transaction(conn, |conn| {
            let mut rows = throttles::lock(conn, &keys, now)?;
            if let Some(wait) = self.pause_in_force(counters, &rows, now) {
                return Ok(Err(wait));
            }
            for row in &mut rows {
                self.roll_window(row, now);
                row.attempts = row.attempts.saturating_add(1);
            }
            // More attempts in flight than the budget: a burst of guesses. Pause, refuse.
            let over: Vec<&mut Throttle> =
                rows.iter_mut().filter(|row| exceeds(row.attempts, self.limit_of(counters, row), false)).collect();
            if !over.is_empty() {
                for row in over {
                    row.attempts -= 1;
                    self.pause(row, counters, now);
                    throttles::save(conn, row)?;
                }
                return Ok(Err(self.pause_in_force(counters, &rows, now).unwrap_or(Duration::from_secs(1))));
            }
            for row in &rows {
                throttles::save(conn, row)?;
            }
            Ok(Ok(()))
        })
    }

    /// The attempt was wrong: its reservation stays, and a counter at its limit is paused.
    pub fn failed(&self, conn: &mut DbConnection, counters: &Counters, now: NaiveDateTime) -> diesel::QueryResult<()> {
        write_transaction(conn, |conn| {
            for mut row in throttles::lock(conn, &counters.keys(), now)? {
                self.roll_window(&mut row, now);
                row.attempts = row.attempts.max(1);
                if exceeds(row.attempts, self.limit_of(counters, &row), true) {
                    self.pause(&mut row, counters, now);
                    self.remember_pauses(counters, std::slice::from_ref(&row), now);
                    self.tell_owner(conn, counters, &row, now)?;
                }
                throttles::save(conn, &row)?;
            }
            Ok(())
        })
    }

    /// The attempt was right: the account's (or device's) counter starts over, the address's
    /// reservation is given back.
    pub fn succeeded(&self, conn: &mut DbConnection, counters: &Counters) -> diesel::QueryResult<()> {
        write_transaction(conn, |conn| {
            // In key order, as `throttles::lock` takes its locks (no deadlock between the two).
            let mut ordered: Vec<&Counter> = counters.counters.iter().collect();
            ordered.sort_by(|a, b| a.key.cmp(&b.key));
            for counter in ordered {
                if counter.kind.resets_on_success() {
                    throttles::clear(conn, &counter.key)?;
                } else {
                    throttles::refund(conn, &counter.key)?;
                }
            }
            Ok(())
        })
    }

    /// Deletes counters whose window and pause are over (nothing in them counts any more).
    pub fn prune(&self, conn: &mut DbConnection, now: NaiveDateTime) -> diesel::QueryResult<usize> {
        throttles::prune(conn, now - self.window())
    }

    fn window(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.policy.window).unwrap_or(chrono::Duration::MAX)
    }

    fn name_bucket(&self, login: &str) -> String {
        let name = normalize_login(login);
        let tag = self.names.sign(name.as_bytes());
        let bucket = u32::from_be_bytes(tag.as_ref()[..4].try_into().unwrap_or_default()) % NAME_BUCKETS;
        format!("name:{bucket:04x}")
    }

    /// A window over starts a new count; a whole window after the last pause ended, the
    /// escalation starts over too.
    fn roll_window(&self, row: &mut Throttle, now: NaiveDateTime) {
        let window = self.window();
        if now - row.window_started_at >= window {
            row.attempts = 0;
            row.window_started_at = now;
        }
        if row.paused_until.is_some_and(|until| now - until >= window) {
            row.strikes = 0;
            row.paused_until = None;
        }
    }

    /// A counter's budget within one window.
    fn limit_of(&self, counters: &Counters, row: &Throttle) -> u32 {
        match counters.kind_of(row) {
            Some(Kind::Address) => self.policy.address_attempts,
            Some(Kind::Device | Kind::Account | Kind::Probe) => self.policy.account_attempts,
            None => 1,
        }
    }

    /// A paused account's owner gets a notice (at most one an hour: see `Mail::hourly_cap`).
    fn tell_owner(
        &self,
        conn: &mut DbConnection,
        counters: &Counters,
        row: &Throttle,
        now: NaiveDateTime,
    ) -> diesel::QueryResult<()> {
        if counters.kind_of(row) != Some(Kind::Account) {
            return Ok(());
        }
        let Some(user_id) = row.throttle_key.strip_prefix("user:").and_then(|id| id.parse::<i64>().ok()) else {
            return Ok(());
        };
        let Some(user) = crate::db::users::find_by_id(conn, user_id)? else { return Ok(()) };
        let minutes = row.paused_until.map_or(1, |until| (until - now).num_minutes().max(1));
        let notice = Notice::SignInsPaused { minutes: u64::try_from(minutes).unwrap_or(1) };
        // In a savepoint of its own: the pause itself must hold whatever happens to its notice
        // (on PostgreSQL a failed statement would otherwise spoil the whole transaction).
        let queued = diesel::Connection::transaction(conn, |conn| -> anyhow::Result<()> {
            self.outbox.notify(conn, Recipient::of(&user), NoticeKind::SignInPaused, notice)?;
            Ok(())
        });
        if let Err(error) = queued {
            tracing::warn!(error = %format!("{error:#}"), "the sign-in pause notice could not be queued");
        }
        Ok(())
    }

    fn pause(&self, row: &mut Throttle, counters: &Counters, now: NaiveDateTime) {
        let length = pause_length(&self.policy, row.strikes);
        // A device's nonce is half of its credential: the log names only the kind.
        let counter = if counters.kind_of(row) == Some(Kind::Device) { "device" } else { row.throttle_key.as_str() };
        tracing::warn!(
            event = "sign_in_paused",
            counter,
            seconds = length.num_seconds(),
            strike = row.strikes + 1,
            "too many wrong answers: sign-in paused"
        );
        row.paused_until = Some(now + length);
        row.strikes = row.strikes.saturating_add(1);
        row.attempts = 0;
        row.window_started_at = now;
    }
}

fn normalize_login(login: &str) -> String {
    login.trim().nfkc().flat_map(char::to_lowercase).take(MAX_NAME_CHARS).collect()
}

fn login_key(login: &str) -> String {
    format!("login:{}", normalize_login(login))
}

/// Failures pause at the limit; reservations in flight only beyond it.
fn exceeds(attempts: i32, limit: u32, at_limit: bool) -> bool {
    let attempts = u32::try_from(attempts).unwrap_or(0);
    if at_limit { attempts >= limit } else { attempts > limit }
}

fn longest_pause(rows: &[Throttle], now: NaiveDateTime) -> Option<Duration> {
    let until = rows.iter().filter_map(|row| row.paused_until).filter(|until| *until > now).max()?;
    Some(round_up_to_seconds(until - now))
}

/// The counter of an account's sign-ins from clients it has not signed in on before.
pub fn account_key(user_id: i64) -> String {
    format!("user:{user_id}")
}

/// One counter per IPv4 address, and per IPv6 /64 (one subscriber's usual allocation).
pub fn address_key(client_ip: &str) -> String {
    match client_ip.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_none() => {
            let segments = v6.segments();
            format!("ip:{:x}:{:x}:{:x}:{:x}::/64", segments[0], segments[1], segments[2], segments[3])
        }
        Ok(IpAddr::V6(v6)) => format!("ip:{}", v6.to_ipv4_mapped().map_or_else(|| v6.to_string(), |v4| v4.to_string())),
        Ok(IpAddr::V4(v4)) => format!("ip:{v4}"),
        Err(_) => format!("ip:{}", client_ip.chars().take(64).collect::<String>()),
    }
}

/// How an account's counter stands, for its admin page and its owner's account page.
pub struct Standing {
    pub paused_until: Option<NaiveDateTime>,
    pub recent_failures: i32,
}

pub fn standing(conn: &mut DbConnection, user_id: i64, now: NaiveDateTime) -> diesel::QueryResult<Option<Standing>> {
    Ok(throttles::find(conn, &account_key(user_id))?.map(|row| Standing {
        paused_until: row.paused_until.filter(|until| *until > now),
        recent_failures: row.attempts,
    }))
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

    fn throttle() -> LoginThrottle {
        let secret = JwtSecret::parse(&crate::random::token_base64(48), "test").unwrap();
        LoginThrottle::new(ThrottlePolicy::default(), &secret, None, Arc::new(Outbox::off(&secret)))
    }

    fn row(now: NaiveDateTime) -> Throttle {
        Throttle { throttle_key: "k".into(), attempts: 0, window_started_at: now, strikes: 0, paused_until: None }
    }

    /// One wrong attempt as `begin` + `failed` count it.
    fn fail(throttle: &LoginThrottle, row: &mut Throttle, limit: u32, now: NaiveDateTime) {
        throttle.roll_window(row, now);
        row.attempts += 1;
        if exceeds(row.attempts, limit, true) {
            let counters = Counters { counters: Vec::new(), login: None };
            throttle.pause(row, &counters, now);
        }
    }

    #[test]
    fn the_limit_th_failure_pauses_and_each_pause_doubles_up_to_the_maximum() {
        let throttle = throttle();
        let start = chrono::Utc::now().naive_utc();
        let mut counter = row(start);
        for _ in 0..4 {
            fail(&throttle, &mut counter, 5, start);
            assert!(counter.paused_until.is_none());
        }
        fail(&throttle, &mut counter, 5, start);
        assert_eq!(counter.paused_until, Some(start + chrono::Duration::minutes(1)));

        let mut pauses = Vec::new();
        for _ in 0..6 {
            let now = counter.paused_until.unwrap();
            for _ in 0..5 {
                fail(&throttle, &mut counter, 5, now);
            }
            pauses.push((counter.paused_until.unwrap() - now).num_minutes());
        }
        assert_eq!(pauses, [2, 4, 8, 15, 15, 15]);

        // A quiet window later, the escalation starts over.
        let later = counter.paused_until.unwrap() + chrono::Duration::minutes(15);
        for _ in 0..5 {
            fail(&throttle, &mut counter, 5, later);
        }
        assert_eq!(counter.paused_until, Some(later + chrono::Duration::minutes(1)));
    }

    #[test]
    fn failures_spread_over_more_than_a_window_never_pause() {
        let throttle = throttle();
        let mut now = chrono::Utc::now().naive_utc();
        let mut counter = row(now);
        for _ in 0..20 {
            fail(&throttle, &mut counter, 5, now);
            now += chrono::Duration::minutes(4);
        }
        assert!(counter.paused_until.is_none());
    }

    #[test]
    fn made_up_names_share_a_bounded_set_of_counters_case_and_width_blind() {
        let throttle = throttle();
        let bucket = |name: &str| throttle.password_counters(None, name, "192.0.2.1", None).counters[0].key.clone();
        assert_eq!(bucket(" Nobody "), bucket("nobody"));
        assert_eq!(bucket("ｎｏｂｏｄｙ"), bucket("nobody"), "fullwidth letters are the same name");
        let distinct: std::collections::HashSet<String> = (0..5_000).map(|n| bucket(&format!("name{n}"))).collect();
        assert!(distinct.iter().all(|key| key.len() == "name:".len() + 4), "{distinct:?}");
        assert!(distinct.len() > 4_500, "buckets spread names out: {}", distinct.len());
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64_bit_prefix() {
        assert_eq!(address_key("2001:db8:1:2:aaaa::1"), address_key("2001:db8:1:2:bbbb::9"));
        assert_ne!(address_key("2001:db8:1:2::1"), address_key("2001:db8:1:3::1"));
        assert_eq!(address_key("::ffff:192.0.2.7"), "ip:192.0.2.7");
        assert_eq!(address_key("192.0.2.7"), "ip:192.0.2.7");
    }

    #[test]
    fn a_known_device_is_counted_on_its_own_budget_only() {
        let throttle = throttle();
        let credential = throttle.devices().issue(7, chrono::Utc::now().timestamp());
        let trusted = throttle.password_counters(Some(7), "alice", "192.0.2.1", Some(&credential));
        assert!(trusted.known_device());
        assert_eq!(trusted.counters.len(), 1);
        assert!(trusted.counters[0].key.starts_with("device:"));
        let elsewhere = throttle.password_counters(Some(8), "bob", "192.0.2.1", Some(&credential));
        assert!(!elsewhere.known_device(), "a credential for another account counts for nothing");
        assert_eq!(elsewhere.keys(), ["user:8", "ip:192.0.2.1"]);
    }

    #[test]
    fn a_pause_seen_here_refuses_the_next_attempts_for_a_second_without_the_database() {
        let throttle = throttle();
        let now = chrono::Utc::now().naive_utc();
        let counters = throttle.password_counters(None, "Nobody", "192.0.2.1", None);
        let mut paused = row(now);
        paused.throttle_key = counters.counters[0].key.clone();
        paused.paused_until = Some(now + chrono::Duration::seconds(30));
        assert_eq!(throttle.remembered_pause("nobody", "192.0.2.9", None), None);

        throttle.remember_pauses(&counters, &[paused], now);

        let wait = throttle.remembered_pause(" NOBODY ", "192.0.2.9", None).expect("the name is remembered as paused");
        assert!((29..=30).contains(&wait.as_secs()), "{wait:?}");
        assert_eq!(throttle.remembered_pause("somebody", "192.0.2.9", None), None, "other names are asked about");
        let device = throttle.devices().issue(7, chrono::Utc::now().timestamp());
        assert_eq!(throttle.remembered_pause("nobody", "192.0.2.9", Some(&device)), None, "a known device always is");
        std::thread::sleep(REMEMBER_PAUSES_FOR);
        assert_eq!(
            throttle.remembered_pause("nobody", "192.0.2.9", None),
            None,
            "after a second, the database decides"
        );
    }
}
