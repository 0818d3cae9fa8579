//! Every background task of an instance, in one list. Each runs on a thread of its own (a busy
//! async runtime never delays one) until its handle is dropped.
//!
//! | task | thread | how often |
//! |---|---|---|
//! | refresh the revoked-session list (`auth::revocation`) | `revocation-sync` | every second, on a connection of its own |
//! | housekeeping: delete ended sessions (their apps told), spent sign-in counters, abandoned second steps and passkey ceremonies, mailed links a day after they expired, mail 30 days after it was sent or given up, back-channel logouts 7 days after | `housekeeping` | `PORTCULLIS_HOUSEKEEPING_INTERVAL` (60 s) |
//! | re-estimate how common each search trigram is (`db::user_search`) | `housekeeping` | hourly |
//! | re-read the signing keys (another instance or the command line may have made one) | `signing-keys` | `PORTCULLIS_KEY_RELOAD_INTERVAL` (30 s) |
//! | rotate the signing key when due, delete dropped keys | `signing-keys` | hourly |
//! | deliver the outbox (`mail::sender`) | `mail-sender-N` | as mail is queued |
//! | deliver logout tokens to apps (`oauth::backchannel`) | `backchannel-logout` | as sessions end (polls every 250 ms) |
//! | handle forgot-password requests (`accounts::ResetRequests`) | a task on the main runtime | as they come |
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::auth::revocation::RevocationList;
use crate::auth::signing_keys::SigningKeys;
use crate::auth::throttle::LoginThrottle;
use crate::auth::tokens::LoadedKey;
use crate::config::TokenSigning;
use crate::db::{self, DbConnection, DbPool};

/// How often housekeeping re-estimates how common each search trigram is.
const TRIGRAM_SAMPLE_EVERY: Duration = Duration::from_secs(60 * 60);
/// How often the automatic rotation is considered, and dropped keys deleted.
const ROTATION_CHECK_EVERY: Duration = Duration::from_secs(60 * 60);

/// Stops a background thread when dropped.
pub struct TaskHandle {
    _stop: mpsc::Sender<()>,
}

/// Runs `tick` every `interval` on a thread named `name` until the handle is dropped.
fn every(name: &str, interval: Duration, mut tick: impl FnMut() + Send + 'static) -> std::io::Result<TaskHandle> {
    let (stop, stopped) = mpsc::channel::<()>();
    std::thread::Builder::new().name(name.to_owned()).spawn(move || {
        while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(interval) {
            tick();
        }
    })?;
    Ok(TaskHandle { _stop: stop })
}

/// Housekeeping: what has ended is deleted, so no table grows with use alone.
pub fn start_housekeeping(
    pool: DbPool,
    revocations: Arc<RevocationList>,
    throttle: Arc<LoginThrottle>,
    interval: Duration,
) -> std::io::Result<TaskHandle> {
    let mut sampled_at: Option<Instant> = None;
    every("housekeeping", interval, move || {
        let pruned = pool.get().context("no database connection available").and_then(|mut conn| {
            let now = db::users::now();
            let sessions = revocations.prune_ended_sessions(&mut conn)?;
            prune(&mut conn, &throttle, now).map(|rows| rows + sessions)
        });
        // Sessions that timed out just told their apps.
        db::logout_deliveries::ring_if_queued();
        match pruned {
            Ok(0) => {}
            Ok(rows) => tracing::debug!(rows, "housekeeping deleted what has ended"),
            Err(error) => tracing::warn!(error = %format!("{error:#}"), "housekeeping could not delete what has ended"),
        }
        if sampled_at.is_none_or(|at| at.elapsed() > TRIGRAM_SAMPLE_EVERY) {
            sampled_at = Some(Instant::now());
            let refreshed = pool
                .get()
                .context("no database connection available")
                .and_then(|mut conn| Ok(db::user_search::refresh_trigram_sample(&mut conn)?));
            if let Err(error) = refreshed {
                tracing::warn!(error = %format!("{error:#}"), "could not sample the users for search");
            }
        }
    })
}

/// Everything but sessions that housekeeping deletes; how many rows.
fn prune(conn: &mut DbConnection, throttle: &LoginThrottle, now: chrono::NaiveDateTime) -> anyhow::Result<usize> {
    let throttles = throttle.prune(conn, now)?;
    let challenges = db::challenges::prune(conn, now)? + db::passkeys::prune_ceremonies(conn, now)?;
    let mail = db::email_links::prune(conn, now - chrono::Duration::days(1))?
        + db::outbox::prune(conn, now - chrono::Duration::days(30))?;
    // Apps' codes, spent refresh tokens and ended grants: two days on, every access token they
    // led to has expired (they live at most a day).
    let apps = db::oauth::prune(conn, now, now - chrono::Duration::days(2))?
        + db::logout_deliveries::prune(conn, now - chrono::Duration::days(7))?
        + db::device_codes::prune(conn, now - chrono::Duration::hours(1))?;
    Ok(throttles + challenges + mail + apps)
}

/// Re-reads the signing keys every `signing.reload_interval` and hands them to `use_keys`
/// (so a key another instance or the command line made is published and used here too);
/// rotates when due and deletes dropped keys.
pub fn start_key_reloader(
    keys: Arc<SigningKeys>,
    pool: DbPool,
    signing: TokenSigning,
    use_keys: impl Fn(Vec<LoadedKey>) + Send + 'static,
) -> std::io::Result<TaskHandle> {
    let mut checked_at: Option<Instant> = None;
    every("signing-keys", signing.reload_interval, move || {
        let result = pool.get().map_err(anyhow::Error::from).and_then(|mut conn| {
            let now = db::users::now();
            if checked_at.is_none_or(|at| at.elapsed() > ROTATION_CHECK_EVERY) {
                checked_at = Some(Instant::now());
                if let Some(kid) = keys.rotate_if_due(&mut conn, &signing, now)? {
                    tracing::info!(kid, "a new signing key is published; it signs in a few minutes");
                }
                SigningKeys::prune(&mut conn, now)?;
            }
            use_keys(keys.load(&mut conn, now)?);
            Ok(())
        });
        if let Err(error) = result {
            tracing::warn!(error = %format!("{error:#}"), "could not re-read the signing keys; the ones in memory stay");
        }
    })
}
