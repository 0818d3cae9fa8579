//! Which sessions have ended early, known to every instance without asking the database per
//! request: each instance keeps the recently revoked session ids in memory and re-reads them
//! from the shared `revoked_sessions` table every second.
//!
//! Two promises: a revoked session's access token is refused everywhere within
//! `MAX_STALENESS`, and checking a request costs one hash-set lookup. When the list cannot be
//! refreshed (database down), it goes stale and guarded requests fail closed with 503.
use std::collections::hash_map::RandomState;
use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::db::users::now;
use crate::db::{self, DbConnection, DbPool, sessions};

/// How often each instance re-reads the list.
pub const SYNC_INTERVAL: Duration = Duration::from_secs(1);
/// A refresh slower than this is logged: two in a row approach `MAX_STALENESS`.
const SLOW_SYNC: Duration = Duration::from_millis(250);
/// A list older than this is not trusted: requests are refused until it is fresh again.
pub const MAX_STALENESS: Duration = Duration::from_secs(2);
/// After reading at least this many revoked ids (a mass sign-out), the read's transient memory
/// is handed back to the system at once.
const LARGE_READ_ROWS: usize = 10_000;
/// Allowance for clocks that differ between instances.
const CLOCK_MARGIN: Duration = Duration::from_secs(60);

#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    Revoked,
    /// What the token says changed after it was issued (a group joined or left): the
    /// session goes on, with a renewed token.
    Outdated,
    /// The list could not be refreshed recently; nobody can be let in safely.
    Stale,
}

/// The first `iat` (Unix seconds) a token may have after its session's claims changed at
/// `changed`: the second after it, so that no token of the change's own second counts (its
/// `iat` cannot say whether it came before or after). Renewals issue their tokens from then.
pub fn renewed_tokens_from(changed: chrono::NaiveDateTime) -> i64 {
    changed.and_utc().timestamp() + 1
}

pub struct RevocationList {
    /// Fingerprints of the revoked ids: a keyed 64-bit hash each, 8 bytes instead of a string
    /// allocation (100,000 revocations take about 2 MiB). Two ids sharing a fingerprint
    /// (odds about 1 in 10^14 per request with 100,000 revoked) would refuse a live session,
    /// never admit a revoked one.
    revoked: RwLock<HashSet<u64>>,
    /// Sessions whose tokens issued before the time given (Unix seconds: the second after the
    /// change) must be renewed, by the same fingerprints.
    renewals: RwLock<HashMap<u64, i64>>,
    /// The fingerprint's key, random per process.
    fingerprint_key: RandomState,
    /// When the last installed read *started* (it saw every revocation committed before then),
    /// as nanoseconds since `epoch`; 0 = never. An atomic, so requests never take a lock for it.
    fresh_as_of: AtomicU64,
    epoch: Instant,
    /// Serialises installing a new set.
    installing: Mutex<()>,
    /// How long a revoked id matters: the longest an access token issued before the
    /// revocation can still be valid, plus margins.
    remember_for: chrono::Duration,
    idle_timeout: chrono::Duration,
}

impl RevocationList {
    pub fn new(access_token_ttl: Duration, idle_timeout: Duration) -> Self {
        let remember = access_token_ttl + crate::auth::tokens::LEEWAY + CLOCK_MARGIN;
        Self {
            revoked: RwLock::default(),
            renewals: RwLock::default(),
            fingerprint_key: RandomState::new(),
            fresh_as_of: AtomicU64::new(0),
            epoch: Instant::now(),
            installing: Mutex::new(()),
            remember_for: chrono::Duration::from_std(remember).unwrap_or(chrono::Duration::MAX),
            idle_timeout: chrono::Duration::from_std(idle_timeout).unwrap_or(chrono::Duration::MAX),
        }
    }

    /// The per-request check of a token of session `sid` issued at `issued_at` (Unix
    /// seconds): no I/O.
    pub fn check(&self, sid: &str, issued_at: i64) -> Result<(), Refusal> {
        self.check_at(sid, Instant::now())?;
        match self.renewals.read() {
            Ok(renewals) if renewals.get(&self.fingerprint(sid)).is_some_and(|after| issued_at < *after) => {
                Err(Refusal::Outdated)
            }
            Ok(_) => Ok(()),
            Err(_) => Err(Refusal::Stale),
        }
    }

    fn check_at(&self, sid: &str, now: Instant) -> Result<(), Refusal> {
        let fresh_as_of = self.fresh_as_of.load(Ordering::Acquire);
        let age = self.nanos_since_epoch(now).saturating_sub(fresh_as_of);
        if fresh_as_of == 0 || age > MAX_STALENESS.as_nanos() as u64 {
            return Err(Refusal::Stale);
        }
        match self.revoked.read() {
            Ok(revoked) if revoked.contains(&self.fingerprint(sid)) => Err(Refusal::Revoked),
            Ok(_) => Ok(()),
            Err(_) => Err(Refusal::Stale),
        }
    }

    /// Reads every revocation that still matters and swaps the new set in. The set is built
    /// outside the lock (readers never wait for the database or for a big rebuild), and a read
    /// that started before the one already installed is discarded, so a slow read can never
    /// undo a newer one.
    pub fn sync(&self, conn: &mut DbConnection) -> anyhow::Result<()> {
        let started = Instant::now();
        let cutoff = now() - self.remember_for;
        let rows = sessions::revoked_since(conn, cutoff).context("could not read the revoked sessions")?;
        let fresh: HashSet<u64> = rows.iter().map(|(sid, _)| self.fingerprint(sid)).collect();
        let renewals: HashMap<u64, i64> = crate::db::groups::renewed_since(conn, cutoff)
            .context("could not read the renewed sessions")?
            .iter()
            .map(|(sid, changed)| (self.fingerprint(sid), renewed_tokens_from(*changed)))
            .collect();
        let large_read = rows.len() >= LARGE_READ_ROWS;
        drop(rows);
        if large_read {
            crate::memory::give_freed_memory_back();
        }
        let started = self.nanos_since_epoch(started);
        let installing = self.installing.lock().map_err(|_| anyhow::anyhow!("revocation list lock poisoned"))?;
        if self.fresh_as_of.load(Ordering::Acquire) >= started {
            return Ok(());
        }
        let previous = {
            let mut revoked = self.revoked.write().map_err(|_| anyhow::anyhow!("revocation list lock poisoned"))?;
            std::mem::replace(&mut *revoked, fresh)
        };
        let previous_renewals = {
            let mut current = self.renewals.write().map_err(|_| anyhow::anyhow!("renewal list lock poisoned"))?;
            std::mem::replace(&mut *current, renewals)
        };
        self.fresh_as_of.store(started, Ordering::Release);
        drop(installing);
        drop(previous);
        drop(previous_renewals);
        Ok(())
    }

    fn fingerprint(&self, sid: &str) -> u64 {
        self.fingerprint_key.hash_one(sid)
    }

    /// Never 0 (which means "never read").
    fn nanos_since_epoch(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX).max(1)
    }

    /// After this instance ended sessions: refuse them here at once, not at the next tick.
    pub async fn sync_now(self: &Arc<Self>, pool: &DbPool) -> anyhow::Result<()> {
        let list = Arc::clone(self);
        db::run(pool, move |conn| list.sync(conn)).await
    }

    /// Deletes the sessions that ended (idle, past their lifetime, or revoked and no longer
    /// remembered); how many.
    pub fn prune_ended_sessions(&self, conn: &mut DbConnection) -> anyhow::Result<usize> {
        let now = now();
        let renewals = crate::db::groups::prune_renewals(conn, now - self.remember_for)?;
        Ok(sessions::prune(conn, now, now - self.idle_timeout, now - self.remember_for)? + renewals)
    }

    /// Refreshes the list every second on a thread of its own (so a busy async runtime can
    /// never delay it), with `sync_pool`'s connection, until the returned handle is dropped.
    /// Housekeeping runs elsewhere (`background.rs`): its deletes can wait on rows that
    /// busy sign-ins hold, and must never delay the refresh (a stale list fails every guarded
    /// request).
    pub fn spawn_syncer(self: &Arc<Self>, sync_pool: DbPool) -> std::io::Result<SyncerHandle> {
        let (stop_sync, sync_stopped) = mpsc::channel::<()>();
        let list = Arc::clone(self);
        std::thread::Builder::new().name("revocation-sync".into()).spawn(move || {
            let mut failing = false;
            // Reads start at a fixed rate (not a fixed pause after each read), so the list's age
            // stays under one interval plus one read; a late read is followed at once by the next.
            let mut next_read = Instant::now() + SYNC_INTERVAL;
            while let Err(RecvTimeoutError::Timeout) =
                sync_stopped.recv_timeout(next_read.saturating_duration_since(Instant::now()))
            {
                let started = Instant::now();
                next_read = (next_read + SYNC_INTERVAL).max(started);
                let connection = sync_pool.get().context("no database connection available");
                let connected = started.elapsed();
                let result = connection.and_then(|mut conn| list.sync(&mut conn));
                if started.elapsed() > SLOW_SYNC {
                    tracing::warn!(took = ?started.elapsed(), getting_the_connection = ?connected, "refreshing the revoked-session list was slow");
                }
                match result {
                    Ok(()) if failing => {
                        failing = false;
                        tracing::info!("the revoked-session list is fresh again");
                    }
                    Ok(()) => {}
                    Err(error) if !failing => {
                        failing = true;
                        tracing::error!(error = %format!("{error:#}"), "cannot refresh the revoked-session list; guarded requests fail until it is fresh");
                    }
                    Err(_) => {}
                }
            }
        })?;
        Ok(SyncerHandle { _stop: stop_sync })
    }
}

/// Stops the sync thread when dropped.
pub struct SyncerHandle {
    _stop: mpsc::Sender<()>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_that_was_never_read_refuses_everyone() {
        let list = RevocationList::new(Duration::from_secs(900), Duration::from_secs(3600));
        assert_eq!(list.check("any", 0), Err(Refusal::Stale));
    }

    #[test]
    fn a_list_goes_stale_when_not_refreshed() {
        let list = RevocationList::new(Duration::from_secs(900), Duration::from_secs(3600));
        let read_at = Instant::now();
        list.fresh_as_of.store(list.nanos_since_epoch(read_at), Ordering::Release);
        assert_eq!(list.check_at("any", read_at + MAX_STALENESS), Ok(()));
        assert_eq!(list.check_at("any", read_at + MAX_STALENESS + Duration::from_millis(1)), Err(Refusal::Stale));
    }

    #[test]
    fn a_revoked_id_is_refused_and_others_are_not() {
        let list = RevocationList::new(Duration::from_secs(900), Duration::from_secs(3600));
        list.revoked.write().unwrap().insert(list.fingerprint("ended-session"));
        list.fresh_as_of.store(list.nanos_since_epoch(Instant::now()), Ordering::Release);
        assert_eq!(list.check("ended-session", 0), Err(Refusal::Revoked));
        assert_eq!(list.check("live-session", 0), Ok(()));
        assert_eq!(list.check("ended-sessio", 0), Ok(()));
    }
}
