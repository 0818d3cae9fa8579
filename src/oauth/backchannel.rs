//! Sign-outs that reach the apps (OpenID Connect Back-Channel Logout 1.0). When a Portcullis
//! session ends, the transaction that ends it queues one delivery per app the session signed in
//! to (`db::logout_deliveries`); the deliverer of every instance claims due deliveries, signs a
//! logout token for each and posts it to the app's `backchannel_logout_uri`, at most
//! [`IN_FLIGHT`] at once, each bounded by [`TIMEOUT`] so a slow or dead app delays neither a
//! sign-out (it only queued a row) nor the other apps' deliveries. A failed delivery is retried
//! with backoff and given up after [`GIVE_UP_AFTER`]. A claim lasts [`LEASE`]: an instance that
//! dies mid-delivery (even `kill -9`) lets go when it passes, and another delivers it.
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDateTime;
use serde::Serialize;

use crate::auth::sessions::Sessions;
use crate::auth::tokens::NoIdTokenKey;
use crate::config::JwtAlgorithm;
use crate::db::logout_deliveries::{self as queue, Claimed, DOORBELL};
use crate::db::users::now;
use crate::db::{self, DbPool};

/// How long after a sign-out on this instance its deliveries start: enough for the sign-out's
/// own answer to leave first (and for sign-outs at the same moment to go in one batch).
const AFTER_THE_ANSWER: Duration = Duration::from_millis(5);
/// The deliverer's threads' nice value (requests run at 0).
const DELIVERER_NICENESS: i32 = 10;
/// Ended sessions whose grants one transaction ends (and whose deliveries it queues).
const ENDED_SESSIONS_AT_ONCE: i64 = 50;
/// Deliveries in flight per instance.
pub const IN_FLIGHT: usize = 16;
/// How long one delivery may take, connection included.
pub const TIMEOUT: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a claim lasts: well past one delivery.
pub const LEASE: Duration = Duration::from_secs(30);
/// How often an idle deliverer looks for deliveries other processes queued.
const POLL: Duration = Duration::from_millis(250);
/// The first retry waits this long; each further one twice as long, up to `MAX_BACKOFF`.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(5 * 60);
/// A logout still undeliverable after this long is given up (the app's own sessions have long
/// timed out by then).
const GIVE_UP_AFTER: chrono::Duration = chrono::Duration::hours(12);
/// How long a logout token is good for (§2.4 leaves it to us; the app checks it at once).
const TOKEN_SECONDS: i64 = 120;
/// The event that makes a JWT a logout token (§2.4).
const LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// The wait before attempt `attempts + 1`.
pub fn backoff(attempts: i32) -> Duration {
    let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 16)).unwrap_or(16);
    FIRST_BACKOFF.saturating_mul(1 << doublings).min(MAX_BACKOFF)
}

/// The claims of a logout token (§2.4): no `nonce`, `sid` as in the app's ID tokens.
#[derive(Debug, Serialize)]
pub struct LogoutClaims<'a> {
    pub iss: &'a str,
    pub sub: String,
    pub aud: &'a str,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
    pub sid: String,
    pub events: serde_json::Value,
}

/// Stops the deliverer when dropped (deliveries in flight are abandoned; their claims pass).
pub struct DelivererHandle {
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// Starts the deliverer on a thread of its own; `pool` should hold a couple of connections.
pub fn spawn(pool: DbPool, sessions: Arc<Sessions>, single_instance: bool) -> anyhow::Result<DelivererHandle> {
    if single_instance {
        // Only this process uses a SQLite file: claims left behind were a killed process's.
        let mut conn = pool.get()?;
        let released = queue::release_claims(&mut conn)?;
        if released > 0 {
            tracing::info!(
                released,
                "sign-outs that were being sent to apps when the last process stopped will go again"
            );
        }
    }
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(TIMEOUT)
        .user_agent(concat!("Portcullis/", env!("CARGO_PKG_VERSION"), " back-channel logout"))
        .build()?;
    // Deliveries (signing, posting, their database work) yield the CPU to requests: a sign-out
    // with a hundred apps answers before the apps hear of it, not after.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .on_thread_start(|| crate::memory::lower_this_threads_priority(DELIVERER_NICENESS))
        .build()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let deliverer = Deliverer { pool, sessions, client };
    std::thread::Builder::new().name("backchannel-logout".into()).spawn(move || {
        crate::memory::lower_this_threads_priority(DELIVERER_NICENESS);
        runtime.block_on(deliverer.run(stopped));
    })?;
    Ok(DelivererHandle { _stop: stop })
}

#[derive(Clone)]
struct Deliverer {
    pool: DbPool,
    sessions: Arc<Sessions>,
    client: reqwest::Client,
}

impl Deliverer {
    async fn run(self, mut stopped: tokio::sync::oneshot::Receiver<()>) {
        let slots = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
        let mut doorbell = DOORBELL.subscribe();
        loop {
            let free = slots.available_permits();
            let mut pause = POLL;
            if free > 0 {
                match self.claim(free).await {
                    Ok(claimed) => {
                        let full = claimed.len() == free;
                        for delivery in claimed {
                            let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else { break };
                            let deliverer = self.clone();
                            tokio::spawn(async move {
                                deliverer.deliver(delivery).await;
                                drop(slot);
                            });
                        }
                        if full {
                            pause = Duration::from_millis(10);
                        }
                    }
                    Err(error) => {
                        tracing::warn!(error = %format!("{error:#}"), "could not read the sign-outs waiting for apps");
                        pause = POLL * 8;
                    }
                }
            }
            // Every slot busy: go on as soon as one frees (not at the next poll).
            let slot_freed = async {
                if free == 0 {
                    drop(slots.acquire().await);
                } else {
                    std::future::pending::<()>().await;
                }
            };
            tokio::select! {
                _ = &mut stopped => break,
                // A sign-out here: its answer goes out first, then its apps hear of it.
                _ = doorbell.changed() => tokio::time::sleep(AFTER_THE_ANSWER).await,
                () = slot_freed => {}
                () = tokio::time::sleep(pause) => {}
            }
        }
    }

    async fn claim(&self, limit: usize) -> anyhow::Result<Vec<Claimed>> {
        db::run(&self.pool, move |conn| -> anyhow::Result<_> {
            let started = now();
            // Sessions that just ended: their grants end and each app's delivery is queued.
            if crate::db::oauth::any_ended_sessions(conn)? {
                crate::db::oauth::end_grants_of_ended_sessions(conn, ENDED_SESSIONS_AT_ONCE, started)?;
            }
            if !queue::any_due(conn, started)? {
                return Ok(Vec::new());
            }
            let lease = chrono::Duration::from_std(LEASE)?;
            Ok(queue::claim_due(conn, started, started + lease, i64::try_from(limit)?)?)
        })
        .await
    }

    async fn deliver(&self, claimed: Claimed) {
        let outcome = self.send(&claimed).await;
        let (id, attempts, created_at) = (claimed.delivery.id, claimed.delivery.attempts, claimed.delivery.created_at);
        let client_id = claimed.client_id.clone();
        let settled = db::run(&self.pool, move |conn| -> anyhow::Result<()> {
            settle(conn, id, attempts, created_at, &client_id, outcome)
        })
        .await;
        if let Err(error) = settled {
            // The claim passes and the delivery goes again (at worst twice).
            tracing::warn!(error = %format!("{error:#}"), delivery = id, "could not record a sign-out sent to an app");
        }
    }

    async fn send(&self, claimed: &Claimed) -> Outcome {
        let Ok(alg) = JwtAlgorithm::parse(&claimed.id_token_alg) else {
            return Outcome::Refused("the app's ID-token algorithm does not read".to_owned());
        };
        let token = match self.logout_token(claimed, alg) {
            Err(error) if error.is::<NoIdTokenKey>() => {
                if let Err(error) = self.sessions.ensure_id_key(&self.pool, alg).await {
                    return Outcome::Retry(format!("no key to sign with: {error:#}"));
                }
                self.logout_token(claimed, alg)
            }
            other => other,
        };
        let token = match token {
            Ok(token) => token,
            Err(error) => return Outcome::Retry(format!("could not sign the logout token: {error:#}")),
        };
        let sent = self
            .client
            .post(&claimed.uri)
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(format!("logout_token={token}"))
            .send()
            .await;
        match sent {
            Ok(answer) if answer.status().is_success() => Outcome::Delivered,
            // §2.8: 400 is the app refusing the token; retrying the same request would not help.
            Ok(answer) if answer.status().is_client_error() && !matches!(answer.status().as_u16(), 408 | 425 | 429) => {
                Outcome::Refused(format!("the app answered {}", answer.status()))
            }
            Ok(answer) => Outcome::Retry(format!("the app answered {}", answer.status())),
            Err(error) if error.is_timeout() => Outcome::Retry(format!("no answer within {} s", TIMEOUT.as_secs())),
            Err(error) if error.is_connect() => Outcome::Retry("could not connect".to_owned()),
            Err(error) => Outcome::Retry(format!("{error}")),
        }
    }

    fn logout_token(&self, claimed: &Claimed, alg: JwtAlgorithm) -> anyhow::Result<String> {
        let keys = self.sessions.keys();
        let iat = chrono::Utc::now().timestamp();
        let claims = LogoutClaims {
            iss: keys.issuer(),
            sub: claimed.delivery.user_id.to_string(),
            aud: &claimed.client_id,
            iat,
            exp: iat + TOKEN_SECONDS,
            jti: crate::random::token_base64(16),
            sid: crate::db::oauth::app_session_id(&claimed.delivery.session_sid),
            events: serde_json::json!({ LOGOUT_EVENT: {} }),
        };
        keys.sign_logout_token(alg, &claims)
    }
}

#[derive(Debug)]
enum Outcome {
    Delivered,
    /// For good: the app refused the token.
    Refused(String),
    Retry(String),
}

fn settle(
    conn: &mut db::DbConnection,
    id: i64,
    attempts: i32,
    created_at: NaiveDateTime,
    client_id: &str,
    outcome: Outcome,
) -> anyhow::Result<()> {
    let at = now();
    match outcome {
        Outcome::Delivered => {
            queue::mark_delivered(conn, id, at)?;
            tracing::info!(delivery = id, client_id, attempts, "an app heard of a sign-out");
        }
        Outcome::Refused(error) => {
            queue::mark_failed(conn, id, &error, at)?;
            tracing::warn!(delivery = id, client_id, attempts, error, "an app refused a logout token; given up");
        }
        Outcome::Retry(error) if at - created_at > GIVE_UP_AFTER => {
            queue::mark_failed(conn, id, &error, at)?;
            tracing::warn!(delivery = id, client_id, attempts, error, "a sign-out never reached its app; given up");
        }
        Outcome::Retry(error) => {
            let wait = backoff(attempts);
            queue::mark_retry(conn, id, &error, at + chrono::Duration::from_std(wait)?)?;
            tracing::warn!(delivery = id, client_id, attempts, retry_in = ?wait, error, "a sign-out did not reach its app; will retry");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_to_a_ceiling() {
        assert_eq!(backoff(1), Duration::from_secs(1));
        assert_eq!(backoff(2), Duration::from_secs(2));
        assert_eq!(backoff(4), Duration::from_secs(8));
        assert_eq!(backoff(40), MAX_BACKOFF);
        assert!(LEASE > TIMEOUT * 2);
    }
}
