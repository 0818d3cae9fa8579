//! The sender: [`THREADS`] threads per instance that each claim one due message at a time from
//! the outbox and deliver it, retrying with backoff. (Several, because one SMTP conversation
//! spends most of its time waiting: the end of the message and the server's delayed TCP
//! acknowledgement cost ~40 ms on Linux, and lettre has no `TCP_NODELAY`.) A claim lasts [`LEASE`]; a sender that dies mid-delivery (even
//! `kill -9`) lets go when it passes, and the message is delivered by whoever looks next, so
//! mail is never lost (at worst, a message the server had just accepted goes twice).
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use chrono::NaiveDateTime;

use super::outbox::Outbox;
use super::transport::{Mailer, SMTP_TIMEOUT, SendError};
use crate::db::outbox::{self, OutboxRow};
use crate::db::users::now;
use crate::db::{DbConnection, DbPool};

/// Deliveries in parallel per instance (each its own SMTP connection, pooled by lettre).
pub const THREADS: usize = 4;
/// How long a claim on a message lasts: well past one SMTP conversation.
pub const LEASE: Duration = Duration::from_secs(3 * SMTP_TIMEOUT.as_secs());
/// How often an idle sender looks for due mail.
const POLL: Duration = Duration::from_millis(500);
/// The first retry waits this long; each further one twice as long, up to `MAX_BACKOFF`.
const FIRST_BACKOFF: Duration = Duration::from_secs(5);
const MAX_BACKOFF: Duration = Duration::from_secs(15 * 60);
/// Mail still undeliverable after this long is given up (its links have long expired).
const GIVE_UP_AFTER: chrono::Duration = chrono::Duration::hours(48);

/// Counts for `/metrics`.
#[derive(Default)]
pub struct SenderStats {
    pub sent: AtomicU64,
    pub failed_attempts: AtomicU64,
    pub given_up: AtomicU64,
}

/// Stops the sender threads when dropped (each after the message in hand, if any).
pub struct SenderHandle {
    _stop: Vec<mpsc::Sender<()>>,
}

/// The wait before attempt `attempts + 1`.
pub fn backoff(attempts: i32) -> Duration {
    let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 16)).unwrap_or(16);
    FIRST_BACKOFF.saturating_mul(1 << doublings).min(MAX_BACKOFF)
}

/// Starts the sender threads; `pool` should hold [`THREADS`] connections.
pub fn spawn(
    pool: DbPool,
    outbox: Arc<Outbox>,
    mailer: Mailer,
    stats: Arc<SenderStats>,
    single_instance: bool,
) -> anyhow::Result<SenderHandle> {
    if single_instance {
        // Only this process uses a SQLite file: claims left behind were a killed process's.
        let mut conn = pool.get().context("no database connection for the mail sender")?;
        let released = outbox::release_claims(&mut conn)?;
        if released > 0 {
            tracing::info!(released, "mail that was being delivered when the last process stopped will go again");
        }
    }
    let mailer = Arc::new(mailer);
    let mut stops = Vec::with_capacity(THREADS);
    for number in 0..THREADS {
        let (stop, stopped) = mpsc::channel::<()>();
        let (pool, outbox, mailer, stats) =
            (pool.clone(), Arc::clone(&outbox), Arc::clone(&mailer), Arc::clone(&stats));
        std::thread::Builder::new().name(format!("mail-sender-{number}")).spawn(move || {
            loop {
                let pause = match deliver_next(&pool, &outbox, &mailer, &stats) {
                    Ok(true) => Duration::ZERO,
                    Ok(false) => POLL,
                    Err(error) => {
                        tracing::warn!(error = %format!("{error:#}"), "the mail sender could not read the outbox");
                        POLL * 4
                    }
                };
                match stopped.recv_timeout(pause) {
                    Err(RecvTimeoutError::Timeout) => {}
                    _ => break,
                }
            }
        })?;
        stops.push(stop);
    }
    Ok(SenderHandle { _stop: stops })
}

/// Delivers one due message; false when none was due.
fn deliver_next(pool: &DbPool, outbox: &Outbox, mailer: &Mailer, stats: &SenderStats) -> anyhow::Result<bool> {
    let connect = || pool.get().context("no database connection for the mail sender");
    let started = now();
    let row = {
        // The connection goes back while the SMTP conversation runs.
        let mut conn = connect()?;
        if !outbox::any_due(&mut conn, started)? {
            return Ok(false);
        }
        let lease = chrono::Duration::from_std(LEASE)?;
        let Some(row) = outbox::claim_next(&mut conn, started, started + lease)? else { return Ok(false) };
        row
    };
    let outcome = match outbox.open(&row) {
        None => Err(SendError {
            permanent: true,
            message: "sealed under a signing secret this instance does not have".to_owned(),
        }),
        Some(sealed) => {
            let message_id = format!("{}.{}", row.id, crate::random::token_base64(12));
            let date = SystemTime::from(row.created_at.and_utc());
            mailer
                .message((&row.recipient, &sealed.to_name), &sealed.message, &message_id, date)
                .and_then(|message| mailer.send(&message))
        }
    };
    settle(&mut *connect()?, &row, outcome, stats)?;
    Ok(true)
}

fn settle(
    conn: &mut DbConnection,
    row: &OutboxRow,
    outcome: Result<String, SendError>,
    stats: &SenderStats,
) -> anyhow::Result<()> {
    let at = now();
    match outcome {
        Ok(answer) => {
            outbox::mark_sent(conn, row.id, at)?;
            stats.sent.fetch_add(1, Ordering::Relaxed);
            tracing::info!(outbox_id = row.id, kind = %row.kind, attempts = row.attempts, server = %answer, "mail delivered");
        }
        Err(error) if error.permanent || given_up(row.created_at, at) => {
            outbox::mark_failed(conn, row.id, &error.message, at)?;
            stats.given_up.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(outbox_id = row.id, kind = %row.kind, attempts = row.attempts, error = %error.message, "mail given up");
        }
        Err(error) => {
            let wait = backoff(row.attempts);
            outbox::mark_retry(conn, row.id, &error.message, at + chrono::Duration::from_std(wait)?)?;
            stats.failed_attempts.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(outbox_id = row.id, kind = %row.kind, attempts = row.attempts, retry_in = ?wait, error = %error.message, "mail not delivered; will retry");
        }
    }
    Ok(())
}

fn given_up(created_at: NaiveDateTime, now: NaiveDateTime) -> bool {
    now - created_at > GIVE_UP_AFTER
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_to_a_ceiling() {
        assert_eq!(backoff(1), Duration::from_secs(5));
        assert_eq!(backoff(2), Duration::from_secs(10));
        assert_eq!(backoff(4), Duration::from_secs(40));
        assert_eq!(backoff(30), MAX_BACKOFF);
        assert!(LEASE > SMTP_TIMEOUT);
    }
}
