//! Sessions benchmark: what the revocation check costs per request, and how long a logout on
//! one instance takes to be enforced on another sharing the database.
//!
//! `cargo bench --bench sessions` (SQLite; two instances on one file), or with
//! `BENCH_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres` for PostgreSQL.
use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::prelude::*;
use portcullis::auth::revocation::RevocationList;
use portcullis::auth::sessions::Sessions;
use portcullis::auth::signing_keys::SigningKeys;
use portcullis::auth::tokens::{Audience, Grant, JwtKeys};
use portcullis::config::{JwtAlgorithm, JwtSecret, MfaPolicy, SessionPolicy, Settings, TokenSigning};
use portcullis::db::schema::revoked_sessions;
use portcullis::db::users::{self, NewUser};
use portcullis::db::{build_pool, run_migrations};
use portcullis::domain::{DisplayName, Email, Role, Username};
use portcullis::mail::Outbox;
use portcullis::startup::Application;

const PASSWORD: &str = "violet tractor sings loudly";
const CHECKS: u32 = 200_000;
const REVOKED: usize = 100_000;
const TRIALS: usize = 20;

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(async {
        let dir = tempfile::tempdir()?;
        let postgres = std::env::var("BENCH_POSTGRES_URL").ok();
        let database_url = match &postgres {
            Some(base) => create_postgres_database(base)?,
            None => format!("sqlite://{}", dir.path().join("bench.db").display()),
        };
        let backend = if postgres.is_some() { "PostgreSQL" } else { "SQLite" };
        let secret = portcullis::random::token_base64(48);
        println!("backend: {backend}; {} cores", std::thread::available_parallelism().map_or(0, usize::from));
        let result = match check_cost(&database_url, &secret) {
            Ok(()) => match revocation_delay(&database_url, &secret).await {
                Ok(()) => login_timing(&database_url, &secret).await,
                Err(error) => Err(error),
            },
            Err(error) => Err(error),
        };
        if let Some(base) = &postgres {
            drop_postgres_database(base)?;
        }
        result
    })
}

fn create_postgres_database(base: &str) -> anyhow::Result<String> {
    portcullis::db::init_postgres_client_library();
    let name = format!("portcullis_bench_{}", std::process::id());
    let mut admin = PgConnection::establish(base)?;
    diesel::sql_query(format!("DROP DATABASE IF EXISTS {name}")).execute(&mut admin)?;
    diesel::sql_query(format!("CREATE DATABASE {name}")).execute(&mut admin)?;
    Ok(format!("{}/{name}", base.rsplit_once('/').map_or(base, |(server, _)| server)))
}

fn drop_postgres_database(base: &str) -> anyhow::Result<()> {
    let name = format!("portcullis_bench_{}", std::process::id());
    let mut admin = PgConnection::establish(base)?;
    diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut admin)?;
    Ok(())
}

fn settings(database_url: &str, secret: &str) -> anyhow::Result<Settings> {
    let env = [
        ("DATABASE_URL", database_url.to_owned()),
        ("PORTCULLIS_BIND", "127.0.0.1:0".to_owned()),
        ("PORTCULLIS_JWT_SECRET", secret.to_owned()),
    ];
    Settings::from_lookup(|key| env.iter().find(|(k, _)| *k == key).map(|(_, v)| v.clone()))
}

/// Nanoseconds per call of `work`, best of three rounds.
fn time_per_call(mut work: impl FnMut()) -> f64 {
    (0..3)
        .map(|_| {
            let started = Instant::now();
            for _ in 0..CHECKS {
                work();
            }
            started.elapsed().as_nanos() as f64 / f64::from(CHECKS)
        })
        .fold(f64::INFINITY, f64::min)
}

fn check_cost(database_url: &str, secret: &str) -> anyhow::Result<()> {
    let settings = settings(database_url, secret)?;
    let pool = build_pool(&settings.database)?;
    let mut conn = pool.get()?;
    run_migrations(&mut conn)?;
    let hash = portcullis::auth::password::hash_blocking(PASSWORD)?;
    let user = users::insert(
        &mut conn,
        &NewUser {
            username: &Username::parse("bench")?,
            email: &Email::parse("bench@example.com")?,
            display_name: &DisplayName::parse("Bench")?,
            password_hash: &hash,
            role: Role::User,
            must_change_password: false,
        },
    )?;
    let policy = SessionPolicy::default();
    let secret = JwtSecret::parse(secret, "bench")?;
    // Both kinds of signature: HMAC with the secret, and the default Ed25519 key pair.
    let hs256 = JwtKeys::new(JwtAlgorithm::Hs256, &secret, None, "http://127.0.0.1", policy.access_token_ttl);
    let signing = SigningKeys::new(&secret, None, policy.access_token_ttl);
    let eddsa = || -> anyhow::Result<JwtKeys> {
        let keys = JwtKeys::new(JwtAlgorithm::EdDsa, &secret, None, "http://127.0.0.1", policy.access_token_ttl);
        keys.replace_keys(signing.load(&mut *pool.get()?, users::now())?);
        Ok(keys)
    };
    signing.ensure(&mut conn, &TokenSigning::default(), users::now())?;
    let keys = eddsa()?;
    let grant = Grant {
        session_id: "bench-session",
        session_expires_at: i64::MAX / 4,
        amr: "pwd",
        auth_time: 0,
        must_enrol: false,
        groups: &[],
        issued_from: None,
    };
    let token = keys.issue(&user, &grant)?.token;
    let hs256_token = hs256.issue(&user, &grant)?.token;
    let list = Arc::new(RevocationList::new(policy.access_token_ttl, policy.idle_timeout));
    list.sync(&mut conn)?;
    // As in the server: a thread keeps the list fresh (a stale list refuses everyone).
    let outbox = Arc::new(Outbox::off(&secret));
    let _syncer = list.spawn_syncer(pool.clone())?;
    let sessions = Sessions::new(eddsa()?, policy, MfaPolicy::Off, list.clone(), outbox);

    time_per_call(|| assert!(sessions.authenticate(&token).is_ok())); // warm-up, not reported
    let verify_only = time_per_call(|| assert!(keys.verify(&token, Audience::Portcullis).is_ok()));
    let verify_only_hs256 = time_per_call(|| assert!(hs256.verify(&hs256_token, Audience::Portcullis).is_ok()));
    let with_check_empty = time_per_call(|| assert!(sessions.authenticate(&token).is_ok()));

    let now = users::now();
    conn.transaction(|conn| -> QueryResult<()> {
        for n in 0..REVOKED {
            diesel::insert_into(revoked_sessions::table)
                .values((revoked_sessions::sid.eq(format!("revoked-{n:06}")), revoked_sessions::revoked_at.eq(now)))
                .execute(conn)?;
        }
        Ok(())
    })?;
    let started = Instant::now();
    list.sync(&mut conn)?;
    let sync_ms = started.elapsed().as_secs_f64() * 1000.0;
    let with_check_full = time_per_call(|| assert!(sessions.authenticate(&token).is_ok()));

    println!();
    println!("per-request token check, best of 3 × {CHECKS} calls:");
    println!("| check                                              | ns/request |");
    println!("|----------------------------------------------------|-----------:|");
    println!("| HS256 signature + claims only                      | {verify_only_hs256:>10.0} |");
    println!("| EdDSA signature + claims only (no revocation check)| {verify_only:>10.0} |");
    println!("| + revocation check, empty list                     | {with_check_empty:>10.0} |");
    println!("| + revocation check, {REVOKED} revoked sessions       | {with_check_full:>10.0} |");
    println!("re-reading {REVOKED} revoked ids from the database (one sync): {sync_ms:.1} ms");
    diesel::delete(revoked_sessions::table).execute(&mut conn)?;
    Ok(())
}

async fn revocation_delay(database_url: &str, secret: &str) -> anyhow::Result<()> {
    let first = Application::build(settings(database_url, secret)?).await?;
    let second = Application::build(settings(database_url, secret)?).await?;
    let (a, b) = (format!("http://127.0.0.1:{}", first.port()), format!("http://127.0.0.1:{}", second.port()));
    let handles = [first.handle(), second.handle()];
    tokio::spawn(first.run_until_stopped());
    tokio::spawn(second.run_until_stopped());
    let client = reqwest::Client::new();

    let mut delays = Vec::with_capacity(TRIALS);
    for _ in 0..TRIALS {
        let body: serde_json::Value = client
            .post(format!("{a}/api/token"))
            .json(&serde_json::json!({"username": "bench", "password": PASSWORD}))
            .send()
            .await?
            .json()
            .await?;
        let token = body["token"].as_str().ok_or_else(|| anyhow::anyhow!("login failed: {body}"))?.to_owned();
        anyhow::ensure!(client.get(format!("{b}/api/me")).bearer_auth(&token).send().await?.status() == 200);
        // Start at a random point of B's one-second sync cycle.
        tokio::time::sleep(Duration::from_millis(u64::from(portcullis::random::bytes::<1>()[0]) * 4)).await;
        let status = client.post(format!("{a}/api/logout")).bearer_auth(&token).send().await?.status();
        anyhow::ensure!(status == 204, "logout answered {status}");
        let logged_out = Instant::now();
        loop {
            if client.get(format!("{b}/api/me")).bearer_auth(&token).send().await?.status() == 401 {
                break;
            }
            anyhow::ensure!(logged_out.elapsed() < Duration::from_secs(5), "instance B never refused the token");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        delays.push(logged_out.elapsed());
    }
    delays.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!();
    println!(
        "logout on instance A → token refused on instance B, {TRIALS} trials: min {:.0} ms, median {:.0} ms, \
         max {:.0} ms (limit 2000 ms)",
        ms(delays[0]),
        ms(delays[TRIALS / 2]),
        ms(delays[TRIALS - 1])
    );
    for handle in handles {
        handle.stop(true).await;
    }
    Ok(())
}

/// Does a login's timing tell whether the name exists? Unknown names are checked against a
/// dummy hash; this measures how close that comes (throttling raised out of the way).
async fn login_timing(database_url: &str, secret: &str) -> anyhow::Result<()> {
    const SAMPLES: usize = 30;
    let mut settings = settings(database_url, secret)?;
    settings.throttle.account_attempts = 10_000;
    settings.throttle.address_attempts = 10_000;
    let app = Application::build(settings).await?;
    let url = format!("http://127.0.0.1:{}/api/token", app.port());
    let handle = app.handle();
    tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::new();
    let time = |username: &'static str| {
        let (client, url) = (client.clone(), url.clone());
        async move {
            let started = Instant::now();
            let status = client
                .post(&url)
                .json(&serde_json::json!({"username": username, "password": "not the password"}))
                .send()
                .await?
                .status();
            anyhow::ensure!(status == 401, "expected 401, got {status}");
            Ok::<_, anyhow::Error>(started.elapsed())
        }
    };
    let (mut unknown, mut wrong) = (Vec::new(), Vec::new());
    time("bench").await?; // warm-up
    for _ in 0..SAMPLES {
        unknown.push(time("nobody-at-all").await?);
        wrong.push(time("bench").await?);
    }
    unknown.sort();
    wrong.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let (unknown_median, wrong_median) = (ms(unknown[SAMPLES / 2]), ms(wrong[SAMPLES / 2]));
    println!();
    println!(
        "failed login, median of {SAMPLES} each (interleaved): unknown user {unknown_median:.1} ms, wrong password \
         {wrong_median:.1} ms, difference {:+.1} ms ({:+.1} %)",
        unknown_median - wrong_median,
        (unknown_median - wrong_median) / wrong_median * 100.0
    );
    handle.stop(true).await;
    Ok(())
}
