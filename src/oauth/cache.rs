//! What the token endpoint remembers for a second, so that an app's token requests need no
//! database work in the steady state: the apps as last read (a change on another instance
//! reaches this one within `FRESH_FOR`; one made here is seen at once), and which app and
//! address pairs had a wrong secret lately (only they have their pause read before a right
//! secret is accepted; a wrong secret always goes through the shared counters).
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::clients::Client;

/// How long an app read from the database is used without reading it again.
pub const FRESH_FOR: Duration = Duration::from_secs(1);
/// How long a wrong secret keeps its app and address pair under watch (the throttle's window
/// is shorter than this in every policy we ship).
const WATCH_FOR: Duration = Duration::from_secs(3600);
const CAPACITY: usize = 4096;

#[derive(Default)]
pub struct ClientCache {
    apps: Mutex<HashMap<String, (Option<Client>, Instant)>>,
    failures: Mutex<HashMap<String, Instant>>,
}

impl ClientCache {
    /// The app as read less than `FRESH_FOR` ago (`Some(None)`: known not to exist).
    pub fn get(&self, client_id: &str) -> Option<Option<Client>> {
        let apps = self.apps.lock().ok()?;
        apps.get(client_id).filter(|(_, read)| read.elapsed() < FRESH_FOR).map(|(client, _)| client.clone())
    }

    pub fn put(&self, client_id: &str, client: Option<Client>) {
        let Ok(mut apps) = self.apps.lock() else { return };
        if apps.len() >= CAPACITY {
            apps.retain(|_, (_, read)| read.elapsed() < FRESH_FOR);
            if apps.len() >= CAPACITY {
                apps.clear();
            }
        }
        apps.insert(client_id.to_owned(), (client, Instant::now()));
    }

    /// After a change made here: read again at the next request.
    pub fn forget(&self, client_id: &str) {
        if let Ok(mut apps) = self.apps.lock() {
            apps.remove(client_id);
        }
    }

    pub fn saw_failure(&self, key: &str) {
        let Ok(mut failures) = self.failures.lock() else { return };
        if failures.len() >= CAPACITY {
            failures.retain(|_, at| at.elapsed() < WATCH_FOR);
            if failures.len() >= CAPACITY {
                failures.clear();
            }
        }
        failures.insert(key.to_owned(), Instant::now());
    }

    pub fn failed_lately(&self, key: &str) -> bool {
        self.failures.lock().is_ok_and(|failures| failures.get(key).is_some_and(|at| at.elapsed() < WATCH_FOR))
    }
}
