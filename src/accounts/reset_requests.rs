//! "Forgot your password?" requests, handled away from the request that made them. The page
//! answers at once, the same for every address; looking the address up and queueing the mail
//! happen here, on a task of the main runtime (not the connection's worker), after a short
//! random pause — so neither the answer nor the next request on the same connection shows
//! whether the address has an account.
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::Accounts;
use crate::auth::password::PasswordHasher;
use crate::auth::second_factor::SecondFactors;
use crate::auth::sessions::Sessions;
use crate::auth::throttle::LoginThrottle;
use crate::db::DbPool;
use crate::domain::Email;
use crate::mail::Outbox;

/// Requests waiting: beyond this many (a flood the per-network budget did not stop) new ones
/// are dropped with a warning rather than held in memory.
const QUEUE: usize = 1024;
/// The pause before each request is handled: up to this long, at random.
const MAX_PAUSE: Duration = Duration::from_millis(250);

/// Where the forgot-password page leaves its requests.
pub struct ResetRequests {
    queue: mpsc::Sender<(Email, String)>,
}

impl ResetRequests {
    /// Starts the task that handles the requests, on the runtime this is called on.
    pub fn spawn(
        pool: DbPool,
        sessions: Arc<Sessions>,
        throttle: Arc<LoginThrottle>,
        hasher: Arc<PasswordHasher>,
        factors: Arc<SecondFactors>,
        outbox: Arc<Outbox>,
    ) -> Self {
        let (queue, mut requests) = mpsc::channel::<(Email, String)>(QUEUE);
        tokio::spawn(async move {
            while let Some((address, client_ip)) = requests.recv().await {
                let pause = u64::from(u16::from_le_bytes(crate::random::bytes::<2>()));
                let pause_ms = u64::try_from(MAX_PAUSE.as_millis()).unwrap_or(250);
                tokio::time::sleep(Duration::from_millis(pause % pause_ms.max(1))).await;
                let accounts = Accounts::new(&pool, &sessions, &throttle, &hasher, &factors, &outbox);
                if let Err(error) = accounts.request_password_reset(address, client_ip).await {
                    tracing::error!(error = %format!("{error:#}"), "a password reset request could not be stored");
                }
            }
        });
        Self { queue }
    }

    /// Leaves a request for `address` from `client_ip`; never waits.
    pub fn submit(&self, address: Email, client_ip: String) {
        if self.queue.try_send((address, client_ip)).is_err() {
            tracing::warn!("too many password reset requests are waiting: this one was dropped");
        }
    }
}
