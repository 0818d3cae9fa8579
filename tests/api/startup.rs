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
        ("PORTCULLIS_JWT_SECRET", portcullis::auth::random::token_base64(48)),
    ];
    let mut settings =
        Settings::from_lookup(|key| env.iter().find(|(k, _)| *k == key).map(|(_, v)| v.clone())).unwrap();
    settings.database.startup_timeout = startup_timeout;
    settings
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn portcullis_waits_for_a_postgres_database_that_appears_after_it_starts() {
    if !postgres_available() {
        return;
    }
    let base = std::env::var(POSTGRES_URL_VAR).unwrap();
    let suffix: String = portcullis::auth::random::bytes::<6>().iter().map(|b| format!("{b:02x}")).collect();
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
