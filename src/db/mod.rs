//! Everything that speaks SQL. One `MultiConnection` over SQLite and PostgreSQL
//! (`connection.rs`: the pool, migrations, transactions). The few statements that differ by
//! backend (upserts, `FOR UPDATE`, the search indexes) are a `match` on the connection in the
//! table's own file: `users.rs`, `user_search.rs`, `throttles.rs`, `outbox.rs`,
//! `signing_keys.rs`.
pub mod audit;
pub mod challenges;
mod connection;
pub mod email_links;
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
    tokio::task::spawn_blocking(move || {
        let mut conn = pool.get().context("no database connection available")?;
        work(&mut conn)
    })
    .await
    .map_err(|error| E::from(anyhow::Error::new(error).context("a database task failed")))?
}
