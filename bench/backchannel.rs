//! Sign-outs that reach the apps, measured: `cargo bench --bench backchannel`.
//!
//! Starts the server in this process on SQLite (or on PostgreSQL with `DATABASE_URL=postgres://…`)
//! with APPS apps that hear of sign-outs at one loopback endpoint (answering 200 at once), and
//! a user who, ROUNDS times, signs in, signs in to every app (code and tokens each), and signs
//! out; in between, the same user signs in and out with no app. Prints the sign-out's latency
//! with APPS apps and with none (and their ratio), and the time from the sign-out to each app's
//! endpoint receiving its logout token (p50, p95, and until the last of the APPS arrived).
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portcullis::config::{PublicUrl, Settings};
use portcullis::db::users::{self, NewUser};
use portcullis::domain::{DisplayName, Email, Role, Username};
use portcullis::startup::Application;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PASSWORD: &str = "violet tractor sings loudly";
const APPS: usize = 100;
const ROUNDS: usize = 30;
const CALLBACK: &str = "https://app.example.test/callback";

fn client() -> reqwest::Client {
    reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).unwrap_or_else(|| panic!("no {name}")) + marker.len();
    html[start..start + html[start..].find('"').unwrap()].to_owned()
}

/// The endpoint every app hears of sign-outs at: records when each token arrived.
async fn receiver(arrivals: Arc<Mutex<Vec<Instant>>>) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let arrivals = Arc::clone(&arrivals);
            tokio::spawn(async move {
                let mut buffer = Vec::new();
                loop {
                    let head_end = loop {
                        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                            break end + 4;
                        }
                        let mut chunk = [0u8; 8192];
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&buffer[..head_end]).to_ascii_lowercase();
                    let length: usize = head
                        .lines()
                        .find_map(|line| line.strip_prefix("content-length:").map(|v| v.trim().to_owned()))
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0);
                    while buffer.len() < head_end + length {
                        let mut chunk = [0u8; 8192];
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                        }
                    }
                    buffer.drain(..head_end + length);
                    arrivals.lock().unwrap().push(Instant::now());
                    if stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

async fn sign_in(base: &str) -> reqwest::Client {
    let http = client();
    let page = http.get(format!("{base}/login")).send().await.unwrap().text().await.unwrap();
    let csrf = hidden(&page, "csrf_token");
    let answer = http
        .post(format!("{base}/login"))
        .form(&[("username", "alice"), ("password", PASSWORD), ("csrf_token", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 303);
    http
}

async fn sign_in_to(http: &reqwest::Client, base: &str, app: &(String, String)) {
    let query = serde_urlencoded::to_string([
        ("response_type", "code"),
        ("client_id", app.0.as_str()),
        ("redirect_uri", CALLBACK),
        ("scope", "openid"),
    ])
    .unwrap();
    let answer = http.get(format!("{base}/oauth2/authorize?{query}")).send().await.unwrap();
    assert_eq!(answer.status(), 303);
    let location = answer.headers()["location"].to_str().unwrap().to_owned();
    let code = reqwest::Url::parse(&location)
        .unwrap()
        .query_pairs()
        .find(|(name, _)| name == "code")
        .map(|(_, value)| value.into_owned())
        .unwrap();
    let tokens = http
        .post(format!("{base}/oauth2/token"))
        .basic_auth(&app.0, Some(&app.1))
        .form(&[("grant_type", "authorization_code"), ("code", code.as_str()), ("redirect_uri", CALLBACK)])
        .send()
        .await
        .unwrap();
    assert_eq!(tokens.status(), 200);
}

/// Signs `http` out; how long the answer took.
async fn sign_out(http: &reqwest::Client, base: &str) -> Duration {
    let page = http.get(format!("{base}/account/sessions")).send().await.unwrap().text().await.unwrap();
    let csrf = hidden(&page, "csrf_token");
    let started = Instant::now();
    let answer = http.post(format!("{base}/logout")).form(&[("csrf_token", csrf.as_str())]).send().await.unwrap();
    let took = started.elapsed();
    assert_eq!(answer.status(), 303);
    took
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let base = format!("http://127.0.0.1:{port}");
    let url =
        std::env::var("DATABASE_URL").unwrap_or_else(|_| format!("sqlite://{}", dir.path().join("b.db").display()));
    let env = [
        ("DATABASE_URL", url.clone()),
        ("PORTCULLIS_BIND", format!("127.0.0.1:{port}")),
        ("PORTCULLIS_JWT_SECRET", portcullis::random::token_base64(48)),
        ("PORTCULLIS_MFA_REQUIRED", "off".to_owned()),
        ("PORTCULLIS_LOGIN_ACCOUNT_ATTEMPTS", "1000".to_owned()),
        ("PORTCULLIS_LOGIN_ADDRESS_ATTEMPTS", "100000".to_owned()),
        ("PORTCULLIS_LOG", "warn".to_owned()),
    ];
    let mut settings = Settings::from_lookup(|key| env.iter().find(|(k, _)| *k == key).map(|(_, v)| v.clone()))?;
    settings.public_url = PublicUrl::parse(&base)?;
    let app = Application::build(settings.clone()).await?;
    let handle = app.handle();
    tokio::spawn(app.run_until_stopped());

    let arrivals = Arc::new(Mutex::new(Vec::new()));
    let port = receiver(Arc::clone(&arrivals)).await;
    let pool = portcullis::db::build_pool(&settings.database)?;
    let apps: Vec<(String, String)> = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let mut conn = pool.get()?;
        let hash = portcullis::auth::password::hash_blocking(PASSWORD)?;
        users::insert(
            &mut conn,
            &NewUser {
                username: &Username::parse("alice")?,
                email: &Email::parse("alice@example.com")?,
                display_name: &DisplayName::parse("Alice")?,
                password_hash: &hash,
                role: Role::User,
                must_change_password: false,
            },
        )?;
        let actor = portcullis::db::audit::Actor::command_line();
        let mut apps = Vec::new();
        for n in 0..APPS {
            let form = portcullis::oauth::ClientForm {
                name: format!("App {n:03}"),
                redirect_uris: CALLBACK.to_owned(),
                backchannel_logout_uri: format!("http://127.0.0.1:{port}/logout/{n}"),
                ..Default::default()
            };
            let valid = portcullis::oauth::ValidClient::parse(&form, 900).map_err(|e| anyhow::anyhow!("{e:?}"))?;
            let created = portcullis::oauth::clients::create(&mut conn, &actor, &valid)?;
            apps.push((created.client.client_id, created.secret.unwrap()));
        }
        Ok(apps)
    })
    .await??;

    // Warm-up: one round of each.
    let http = sign_in(&base).await;
    sign_out(&http, &base).await;
    let (mut bare, mut with_apps, mut each, mut last) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for round in 0..=ROUNDS {
        let http = sign_in(&base).await;
        let took = sign_out(&http, &base).await;
        if round > 0 {
            bare.push(took);
        }
        let http = sign_in(&base).await;
        for app in &apps {
            sign_in_to(&http, &base, app).await;
        }
        arrivals.lock().unwrap().clear();
        let started = Instant::now();
        let took = sign_out(&http, &base).await;
        let deadline = started + Duration::from_secs(30);
        while arrivals.lock().unwrap().len() < APPS {
            assert!(Instant::now() < deadline, "every app heard of the sign-out within 30 s");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        if round > 0 {
            with_apps.push(took);
            let got: Vec<Duration> = arrivals.lock().unwrap().iter().map(|at| *at - started).collect();
            last.push(*got.iter().max().unwrap());
            each.extend(got);
        }
    }
    for list in [&mut bare, &mut with_apps, &mut each, &mut last] {
        list.sort();
    }
    let backend = if url.starts_with("postgres") { "PostgreSQL" } else { "SQLite" };
    println!("back-channel logout, {backend}, {APPS} apps per session, {ROUNDS} rounds");
    println!(
        "sign-out latency p50/p95: {} / {} with no app, {} / {} with {APPS} apps: {:.2}× (p50), {:.2}× (p95)",
        ms(percentile(&bare, 0.5)),
        ms(percentile(&bare, 0.95)),
        ms(percentile(&with_apps, 0.5)),
        ms(percentile(&with_apps, 0.95)),
        percentile(&with_apps, 0.5).as_secs_f64() / percentile(&bare, 0.5).as_secs_f64(),
        percentile(&with_apps, 0.95).as_secs_f64() / percentile(&bare, 0.95).as_secs_f64(),
    );
    println!(
        "sign-out → the app receives its logout token, p50/p95 over {} deliveries: {} / {}; until the last of {APPS}: p50 {} p95 {}",
        each.len(),
        ms(percentile(&each, 0.5)),
        ms(percentile(&each, 0.95)),
        ms(percentile(&last, 0.5)),
        ms(percentile(&last, 0.95)),
    );
    handle.stop(true).await;
    Ok(())
}
