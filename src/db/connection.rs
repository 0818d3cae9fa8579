use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, anyhow};
use diesel::connection::SimpleConnection;
use diesel::r2d2::{self, ManageConnection, R2D2Connection};
use diesel::{Connection, PgConnection, SqliteConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use secrecy::ExposeSecret;

use crate::config::{DatabaseSettings, DatabaseUrl};

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");
/// Serialises migrations when several instances start against one PostgreSQL database.
const MIGRATION_LOCK_ID: i64 = 0x706f_7274_6375;

#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
}

pub type DbPool = r2d2::Pool<ConnectionManager>;

/// Opens the backend the URL names. (The derived `establish` would try SQLite for any string.)
#[derive(Debug)]
pub struct ConnectionManager {
    url: DatabaseUrl,
    statements: StatementCount,
}

/// How many statements the connections of one pool have run: what holds the promise that
/// the per-request path (`/api/me`, pages, `/auth/verify`) does no database work.
#[derive(Debug, Clone, Default)]
pub struct StatementCount(Arc<AtomicU64>);

impl StatementCount {
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    fn count(&self) -> impl diesel::connection::Instrumentation + use<> {
        let counter = Arc::clone(&self.0);
        move |event: diesel::connection::InstrumentationEvent<'_>| {
            if matches!(event, diesel::connection::InstrumentationEvent::StartQuery { .. }) {
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error(transparent)]
    Connection(#[from] diesel::ConnectionError),
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
}

/// How long a statement waits for a lock another connection holds (SQLite's busy timeout,
/// PostgreSQL's lock_timeout) before failing as "busy" (answered with 503 and Retry-After).
pub(super) const LOCK_TIMEOUT: Duration = Duration::from_secs(5);

impl ManageConnection for ConnectionManager {
    type Connection = DbConnection;
    type Error = ConnectError;

    fn connect(&self) -> Result<DbConnection, ConnectError> {
        match &self.url {
            DatabaseUrl::Sqlite(path) => {
                let mut conn = SqliteConnection::establish(&path.to_string_lossy())?;
                conn.set_instrumentation(self.statements.count());
                // busy_timeout first: it makes everything after it (switching to WAL included)
                // wait for another process's lock instead of failing with "database is locked".
                // WAL lets readers run beside the writer.
                conn.batch_execute(&format!(
                    "PRAGMA busy_timeout = {}; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                         PRAGMA foreign_keys = ON;",
                    LOCK_TIMEOUT.as_millis()
                ))?;
                Ok(DbConnection::Sqlite(conn))
            }
            DatabaseUrl::Postgres(url) => {
                let mut conn = PgConnection::establish(url.expose_secret())?;
                conn.set_instrumentation(self.statements.count());
                // Like SQLite's busy_timeout: a request waits this long for a row or table
                // another holds, then fails (a 503 asking to retry) instead of hanging.
                conn.batch_execute(&format!("SET lock_timeout = '{}ms'", LOCK_TIMEOUT.as_millis()))?;
                Ok(DbConnection::Postgres(conn))
            }
        }
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), ConnectError> {
        Ok(conn.ping()?)
    }

    fn has_broken(&self, conn: &mut DbConnection) -> bool {
        std::thread::panicking() || conn.is_broken()
    }
}

/// Must run before libpq first uses OpenSSL. OpenSSL otherwise frees its global state in an
/// `atexit` handler while pool threads may still be opening TLS connections, and the process
/// crashes on its way out (seen as a SIGSEGV after the last test). `openssl_sys::init` sets
/// `OPENSSL_INIT_NO_ATEXIT`, so the operating system reclaims that memory instead.
pub fn init_postgres_client_library() {
    openssl_sys::init();
}

/// Builds the pool and opens one connection now, so a wrong URL fails at start-up.
pub fn build_pool(settings: &DatabaseSettings) -> anyhow::Result<DbPool> {
    build_counted_pool(settings).map(|(pool, _)| pool)
}

/// [`build_pool`], with the count of the statements its connections run.
pub fn build_counted_pool(settings: &DatabaseSettings) -> anyhow::Result<(DbPool, StatementCount)> {
    let describe = match &settings.url {
        DatabaseUrl::Sqlite(path) => format!("the SQLite database {}", path.display()),
        DatabaseUrl::Postgres(_) => "PostgreSQL".to_owned(),
    };
    let statements = StatementCount::default();
    let manager = ConnectionManager { url: settings.url.clone(), statements: statements.clone() };
    // Probe once directly: r2d2 would only report a time-out, and we want the real reason.
    manager.connect().map_err(|error| anyhow!("could not open {describe}: {}", first_line(&error.to_string())))?;
    r2d2::Pool::builder()
        .max_size(settings.pool_size)
        .min_idle(Some(1))
        .connection_timeout(Duration::from_secs(5))
        .error_handler(Box::new(r2d2::LoggingErrorHandler))
        .build(manager)
        .map(|pool| (pool, statements))
        .with_context(|| format!("could not open {describe}"))
}

fn first_line(message: &str) -> &str {
    message.lines().next().unwrap_or(message).trim()
}

/// A transaction that writes. On SQLite its first statement takes the write lock, so a
/// concurrent writer waits (busy_timeout) instead of failing when its read snapshot goes stale.
pub fn write_transaction<T, E>(
    conn: &mut DbConnection,
    work: impl FnOnce(&mut DbConnection) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<diesel::result::Error>,
{
    conn.transaction(|conn| {
        if let DbConnection::Sqlite(sqlite) = conn {
            sqlite.batch_execute("UPDATE users SET id = id WHERE 0")?;
        }
        work(conn)
    })
}

/// Inside a write transaction: holds the active admins' rows until commit, so two admins
/// cannot each remove "the other" last admin at the same moment. (SQLite's write lock
/// already serialises writers.)
pub fn lock_active_admins(conn: &mut DbConnection) -> diesel::QueryResult<()> {
    match conn {
        DbConnection::Postgres(pg) => {
            pg.batch_execute("SELECT id FROM users WHERE role = 'admin' AND is_active FOR UPDATE")
        }
        DbConnection::Sqlite(_) => Ok(()),
    }
}

/// Applies the migrations embedded for this backend; returns the versions applied.
pub fn run_migrations(conn: &mut DbConnection) -> anyhow::Result<Vec<String>> {
    let applied = match conn {
        DbConnection::Sqlite(conn) => conn
            .run_pending_migrations(SQLITE_MIGRATIONS)
            .map(|versions| versions.iter().map(ToString::to_string).collect())
            .map_err(|error| anyhow!(error)),
        DbConnection::Postgres(conn) => {
            // Migrations may wait for busy tables as long as it takes (instances still serving).
            conn.batch_execute(&format!("SET lock_timeout = 0; SELECT pg_advisory_lock({MIGRATION_LOCK_ID})"))?;
            let result = conn
                .run_pending_migrations(POSTGRES_MIGRATIONS)
                .map(|versions| versions.iter().map(ToString::to_string).collect())
                .map_err(|error| anyhow!(error));
            conn.batch_execute(&format!(
                "SELECT pg_advisory_unlock({MIGRATION_LOCK_ID}); SET lock_timeout = '{}ms'",
                LOCK_TIMEOUT.as_millis()
            ))?;
            result
        }
    };
    let applied = applied.context("could not apply database migrations")?;
    // The data half of a migration that needs Rust (Unicode tables): cheap when done.
    super::users::backfill_email_skeletons(conn).context("could not record what e-mail addresses look like")?;
    let indexed = super::users::backfill_search_text(conn).context("could not index users for search")?;
    if indexed > 0 {
        tracing::info!(indexed, "users indexed for substring search");
    }
    Ok(applied)
}
