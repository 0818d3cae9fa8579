//! Upgrading: a database made by an earlier release — with the first text of migrations 000009
//! and 000010, which were later edited — and data in it, opened by today's server. The people
//! in it sign in, and the schema ends up exactly as a new installation's (the repair migration
//! 000013 adds what the edits added).
use diesel::prelude::*;
use diesel::sql_types::Text;
use diesel_migrations::{FileBasedMigrations, MigrationHarness};
use portcullis::domain::Role;

use crate::helpers::*;

const RELEASE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/migrations-2026-11-30");

#[derive(QueryableByName, PartialEq, Eq, PartialOrd, Ord, Debug)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

/// Every table, column and index, as `kind name`.
fn schema(url: &str) -> Vec<String> {
    let query = if url.starts_with("sqlite://") {
        "SELECT type || ' ' || name || ' ' || COALESCE((SELECT group_concat(c.name, ',') FROM pragma_table_info(m.name) c), '') AS name \
         FROM sqlite_master m WHERE name NOT LIKE 'sqlite_%' AND name NOT LIKE 'users_fts_%' AND name <> '__diesel_schema_migrations'"
    } else {
        "SELECT 'column ' || table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable AS name \
         FROM information_schema.columns WHERE table_schema = 'public' AND table_name <> '__diesel_schema_migrations' \
         UNION ALL SELECT 'index ' || indexname || ' ' || indexdef FROM pg_indexes WHERE schemaname = 'public' \
         AND tablename <> '__diesel_schema_migrations'"
    };
    let mut names: Vec<Name> = if let Some(path) = url.strip_prefix("sqlite://") {
        diesel::sql_query(query).load(&mut SqliteConnection::establish(path).unwrap()).unwrap()
    } else {
        diesel::sql_query(query).load(&mut PgConnection::establish(url).unwrap()).unwrap()
    };
    names.sort();
    names.into_iter().map(|name| name.name).collect()
}

/// A database as the release left it, with two people in it (one of them disabled).
fn release_database(backend: Backend, dir: &std::path::Path, hash: &str) -> String {
    let insert = format!(
        "INSERT INTO users (username, email, display_name, password_hash, role, is_active, created_at, updated_at) VALUES \
         ('olga', 'olga@example.com', 'Olga', '{hash}', 'admin', TRUE, '2026-11-30 10:00:00', '2026-11-30 10:00:00'), \
         ('pia', 'pia@example.com', 'Pia', '{hash}', 'user', FALSE, '2026-11-30 10:00:00', '2026-11-30 10:00:00')"
    );
    match backend {
        Backend::Sqlite => {
            let path = dir.join("release.db");
            let mut conn = SqliteConnection::establish(&path.display().to_string()).unwrap();
            let migrations = FileBasedMigrations::from_path(format!("{RELEASE}/sqlite")).unwrap();
            assert_eq!(conn.run_pending_migrations(migrations).unwrap().len(), 10, "the release's ten migrations");
            diesel::sql_query(insert).execute(&mut conn).unwrap();
            format!("sqlite://{}", path.display())
        }
        Backend::Postgres => {
            let url = create_postgres_database();
            let mut conn = PgConnection::establish(&url).unwrap();
            let migrations = FileBasedMigrations::from_path(format!("{RELEASE}/postgres")).unwrap();
            assert_eq!(conn.run_pending_migrations(migrations).unwrap().len(), 10, "the release's ten migrations");
            diesel::sql_query(insert).execute(&mut conn).unwrap();
            url
        }
    }
}

async fn an_installation_of_the_last_release_upgrades_and_everyone_signs_in(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let hash = portcullis::auth::password::hash_blocking(PASSWORD).unwrap();
    let url = release_database(backend, dir.path(), &hash);
    let before = schema(&url);
    assert!(!before.iter().any(|line| line.contains("search_trigram_sample")), "the release's own schema");

    // Today's server, with the real defaults (administrators need a second factor).
    let app = spawn_app_on_database(url.clone(), |settings| {
        settings.mfa_required = portcullis::config::MfaPolicy::default();
    })
    .await;

    let signed_in = app.login("olga", PASSWORD).await;
    assert_eq!(signed_in.status(), 303, "the release's administrator signs in");
    let landing = app.get(&location(&signed_in)).await;
    assert_eq!(location(&landing), "/account/security", "and is asked to set up a second factor, as the policy says");
    assert_eq!(app.browser().login("pia", PASSWORD).await.status(), 401, "a disabled account stays disabled");
    let found = app.with_conn(|conn| portcullis::db::users::find_by_login(conn, "olga@example.com")).await.unwrap();
    assert_eq!(found.map(|user| (user.role, user.time_zone.name().to_owned())), Some((Role::Admin, "UTC".to_owned())));

    // The same schema as a new installation's.
    let fresh = spawn_app(backend).await;
    assert_eq!(schema(&url), schema(&fresh.database_url), "upgraded and new databases differ");
    fresh.server.stop(true).await;
    app.server.stop(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sqlite_installation_of_the_last_release_upgrades_and_everyone_signs_in() {
    an_installation_of_the_last_release_upgrades_and_everyone_signs_in(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_installation_of_the_last_release_upgrades_and_everyone_signs_in() {
    if postgres_available() {
        an_installation_of_the_last_release_upgrades_and_everyone_signs_in(Backend::Postgres).await;
    }
}
