//! Everything that speaks SQL. One `MultiConnection` over SQLite and PostgreSQL
//! (`connection.rs`: the pool, migrations, transactions). The few statements that differ by
//! backend (upserts, `FOR UPDATE`, the search indexes) are a `match` on the connection in the
//! table's own file: `users.rs`, `user_search.rs`, `throttles.rs`, `outbox.rs`,
//! `signing_keys.rs`.
pub mod audit;
pub mod challenges;
mod connection;
pub mod device_codes;
pub mod email_links;
pub mod groups;
pub mod logout_deliveries;
pub mod oauth;
pub mod outbox;
pub mod passkeys;
pub mod schema;
pub mod second_factors;
pub mod sessions;
pub mod signing_keys;
pub mod throttles;
pub mod user_search;
pub mod users;

pub use connection::{
    ConnectionManager, DbConnection, DbPool, MultiBackend, StatementCount, build_counted_pool, build_pool,
    init_postgres_client_library, lock_active_admins, run_migrations, write_transaction,
};

/// Runs blocking database work on the blocking pool with a pooled connection, which is
/// returned before the caller's next `.await`.
/// Database work slower than this, waits included, is logged as a warning.
const SLOW_WORK: std::time::Duration = std::time::Duration::from_secs(1);

pub async fn run<T, E>(
    pool: &DbPool,
    work: impl FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
) -> Result<T, E>
where
    T: Send + 'static,
    E: From<anyhow::Error> + Send + 'static,
{
    use anyhow::Context;
    let pool = pool.clone();
    // The caller's span (a request's) follows the work onto the blocking pool, with how long
    // it waited for a thread and a connection and how long it ran.
    let span = tracing::debug_span!("db");
    let queued = std::time::Instant::now();
    tokio::task::spawn_blocking(move || {
        let _entered = span.enter();
        let started = std::time::Instant::now();
        let mut conn = pool.get().context("no database connection available")?;
        let connected = std::time::Instant::now();
        let result = work(&mut conn);
        // The work's transaction is over: a sign-out it made reaches the apps at once.
        logout_deliveries::ring_if_queued();
        let (thread_wait, connection_wait, ran) = (started - queued, connected - started, connected.elapsed());
        if thread_wait + connection_wait + ran > SLOW_WORK {
            tracing::warn!(?thread_wait, ?connection_wait, ?ran, "slow database work");
        } else {
            tracing::debug!(?thread_wait, ?connection_wait, ?ran, "database work");
        }
        result
    })
    .await
    .map_err(|error| E::from(anyhow::Error::new(error).context("a database task failed")))?
}

/// Whether an unexpected error is the database being busy for now, not broken: a SQLite file
/// locked past its busy timeout, a PostgreSQL lock wait past `lock_timeout`, no free pooled
/// connection, a dropped connection. Those are 503 with `Retry-After`, not 500: the request
/// changed nothing (its transaction rolled back) and the same request will work shortly.
pub fn is_temporary(error: &anyhow::Error) -> bool {
    use diesel::result::Error as Diesel;
    error.chain().any(|cause| {
        if let Some(diesel) = cause.downcast_ref::<Diesel>() {
            return match diesel {
                Diesel::DatabaseError(kind, info) => {
                    matches!(
                        kind,
                        diesel::result::DatabaseErrorKind::ClosedConnection
                            | diesel::result::DatabaseErrorKind::SerializationFailure
                    ) || ["database is locked", "database table is locked", "database is busy", "lock timeout"]
                        .iter()
                        .any(|busy| info.message().contains(busy))
                }
                Diesel::BrokenTransactionManager => true,
                _ => false,
            };
        }
        cause.downcast_ref::<r2d2::Error>().is_some()
    })
}
