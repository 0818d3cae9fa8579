//! Starting up next to a database that is not there yet, as instances often do.
use std::time::{Duration, Instant};

use diesel::{Connection, PgConnection, RunQueryDsl};
use portcullis::config::Settings;
use portcullis::startup::Application;

use crate::helpers::*;

fn settings(database_url: &str, startup_timeout: Duration) -> Settings {
    let env = [
        ("DATABASE_URL", database_url.to_owned()),
        ("PORTCULLIS_BIND", "127.0.0.1:0".to_owned()),
        ("PORTCULLIS_JWT_SECRET", portcullis::random::token_base64(48)),
    ];
    let mut settings =
        Settings::from_lookup(|key| env.iter().find(|(k, _)| *k == key).map(|(_, v)| v.clone())).unwrap();
    settings.database.startup_timeout = startup_timeout;
    settings
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(postgres_tests), ignore = "needs PostgreSQL: set PORTCULLIS_TEST_POSTGRES_URL")]
async fn portcullis_waits_for_a_postgres_database_that_appears_after_it_starts() {
    if !postgres_available() {
        return;
    }
    let base = std::env::var(POSTGRES_URL_VAR).unwrap();
    let suffix: String = portcullis::random::bytes::<6>().iter().map(|b| format!("{b:02x}")).collect();
    let name = format!("portcullis_test_late_{suffix}");
    let (server, _) = base.split('?').next().unwrap().rsplit_once('/').unwrap();
    let url = format!("{server}/{name}");
    let starting = tokio::spawn(Application::build(settings(&url, Duration::from_secs(30))));

    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!starting.is_finished(), "start-up gave up instead of waiting");
    let create = format!("CREATE DATABASE {name}");
    tokio::task::spawn_blocking(move || {
        let mut admin = PgConnection::establish(&base).unwrap();
        diesel::sql_query(create).execute(&mut admin).unwrap();
    })
    .await
    .unwrap();

    let app = tokio::time::timeout(Duration::from_secs(20), starting).await.expect("started").unwrap().unwrap();
    let address = format!("http://127.0.0.1:{}/readyz", app.port());
    let handle = app.handle();
    tokio::spawn(app.run_until_stopped());
    assert_eq!(reqwest::get(address).await.unwrap().status(), 200);
    handle.stop(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_postgres_stops_start_up_after_the_timeout_with_the_reason() {
    let started = Instant::now();

    let outcome = Application::build(settings("postgres://portcullis@127.0.0.1:1/none", Duration::from_secs(2))).await;

    let error = format!("{:#}", outcome.err().expect("start-up fails"));
    assert!(error.contains("PostgreSQL"), "{error}");
    let waited = started.elapsed();
    assert!(waited >= Duration::from_secs(1) && waited < Duration::from_secs(10), "{waited:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_path_that_cannot_be_opened_fails_at_once() {
    let started = Instant::now();

    let outcome =
        Application::build(settings("sqlite:///nonexistent-dir/portcullis.db", Duration::from_secs(30))).await;

    assert!(outcome.is_err());
    assert!(started.elapsed() < Duration::from_secs(5), "no retries for SQLite");
}

/// The database becomes unreachable under a running server (connections refused and cut):
/// signed-in requests fail closed with 503, never a 200 on stale data, and recover by
/// themselves when it comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(postgres_tests), ignore = "needs PostgreSQL: set PORTCULLIS_TEST_POSTGRES_URL")]
async fn while_postgres_is_unreachable_signed_in_requests_fail_closed_then_recover() {
    let Some(app) = spawn_postgres_app().await else { return };
    let user = app.create_user("alice", portcullis::domain::Role::User).await;
    let token = app.api_token(&user).await;
    assert_eq!(app.get_with_bearer("/api/me", &token).await.status(), 200);
    let name = app.database_url.rsplit('/').next().unwrap().split('?').next().unwrap().to_owned();
    let set_reachable = |reachable: bool| {
        let (base, name) = (std::env::var(POSTGRES_URL_VAR).unwrap(), name.clone());
        tokio::task::spawn_blocking(move || {
            let mut admin = PgConnection::establish(&base).unwrap();
            diesel::sql_query(format!("ALTER DATABASE {name} ALLOW_CONNECTIONS {reachable}"))
                .execute(&mut admin)
                .unwrap();
            if !reachable {
                let cut = format!(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}' AND pid <> pg_backend_pid()"
                );
                diesel::sql_query(cut).execute(&mut admin).unwrap();
            }
        })
    };

    set_reachable(false).await.unwrap();
    let refused = within(Duration::from_secs(8), || async {
        let response = app.get_with_bearer("/api/me", &token).await;
        assert!(response.status() == 200 || response.status() == 503, "{}", response.status());
        response.status() == 503
    })
    .await;
    let body: serde_json::Value = app.get_with_bearer("/api/me", &token).await.json().await.unwrap();
    set_reachable(true).await.unwrap();

    assert!(refused.is_some(), "requests were still let in 8 s after the database went away");
    assert_eq!(body["error"], "unavailable");
    let recovered =
        within(Duration::from_secs(15), || async { app.get_with_bearer("/api/me", &token).await.status() == 200 })
            .await;
    assert!(recovered.is_some(), "no recovery 15 s after the database returned");
    assert_eq!(app.get("/healthz").await.status(), 200);
    app.server.stop(true).await;
}
