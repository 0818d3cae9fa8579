use std::sync::Arc;

use diesel::{Connection, PgConnection, RunQueryDsl};
use portcullis::config::Settings;
use portcullis::db::users::{self, NewUser};
use portcullis::db::{DbPool, build_pool};
use portcullis::domain::{DisplayName, Email, Role, Username};
use portcullis::startup::Application;
use reqwest::cookie::CookieStore;
use reqwest::{Response, Url, header};

pub(crate) const POSTGRES_URL_VAR: &str = "PORTCULLIS_TEST_POSTGRES_URL";
pub(crate) const PASSWORD: &str = "violet tractor sings loudly";

/// Runs each scenario once per backend: `name::sqlite` and `name::postgres`.
macro_rules! both_backends {
    ($(async fn $name:ident($app:ident: TestApp) $body:block)*) => {
        both_backends_with! { $crate::helpers::default_settings; $(async fn $name($app: TestApp) $body)* }
    };
}

/// `both_backends!` on servers whose settings `$adjust` changes first (a `fn(&mut Settings)`).
macro_rules! both_backends_with {
    ($adjust:path; $(async fn $name:ident($app:ident: TestApp) $body:block)*) => {$(
        mod $name {
            #![allow(unused_imports, reason = "a scenario may use nothing of its file but the helpers")]
            use super::*;
            async fn scenario($app: $crate::helpers::TestApp) $body
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let app = $crate::helpers::spawn_app_with($crate::helpers::Backend::Sqlite, $adjust).await;
                let server = app.server.clone();
                scenario(app).await;
                server.stop(true).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            #[cfg_attr(not(postgres_tests), ignore = "needs PostgreSQL: set PORTCULLIS_TEST_POSTGRES_URL")]
            async fn postgres() {
                if $crate::helpers::postgres_available() {
                    let app = $crate::helpers::spawn_app_with($crate::helpers::Backend::Postgres, $adjust).await;
                    let server = app.server.clone();
                    scenario(app).await;
                    // Workers close their connections before the process exits.
                    server.stop(true).await;
                }
            }
        }
    )*};
}

/// The test servers' settings as they are (see `start_instance`).
pub(crate) fn default_settings(_: &mut Settings) {}

/// An installation that signs tokens with the shared secret (`PORTCULLIS_JWT_ALG=HS256`), for
/// the scenarios about that mode (forging with the secret, rotating it).
pub(crate) fn hs256(settings: &mut Settings) {
    settings.signing.algorithm = portcullis::config::JwtAlgorithm::Hs256;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Backend {
    Sqlite,
    Postgres,
}

pub(crate) struct TestApp {
    pub address: String,
    pub server: actix_web::dev::ServerHandle,
    pub client: reqwest::Client,
    pub cookies: Arc<reqwest::cookie::Jar>,
    pub pool: DbPool,
    pub jwt_secret: String,
    pub issuer: String,
    pub database_url: String,
    /// Statements the server's request pool has run (the hot path must add none).
    pub statements: portcullis::db::StatementCount,
    _dir: Arc<tempfile::TempDir>,
}

pub(crate) struct TestUser {
    pub id: i64,
    pub username: String,
    pub email: String,
    pub password: String,
}

fn random_hex() -> String {
    portcullis::random::bytes::<8>().iter().map(|b| format!("{b:02x}")).collect()
}

/// The PostgreSQL variant: skipped (loudly) on a machine without the variable, failed in CI.
pub(crate) async fn spawn_postgres_app() -> Option<TestApp> {
    if !postgres_available() {
        return None;
    }
    Some(spawn_app(Backend::Postgres).await)
}

/// Whether PostgreSQL tests can run here; in CI they must (this panics if not).
pub(crate) fn postgres_available() -> bool {
    if std::env::var(POSTGRES_URL_VAR).is_err() {
        assert!(
            std::env::var("CI").is_err(),
            "{POSTGRES_URL_VAR} must be set in CI: the PostgreSQL tests may not be skipped"
        );
        announce_skip(&format!("the PostgreSQL variant of every test: set {POSTGRES_URL_VAR} to run them"));
        return false;
    }
    true
}

/// Says once per run, past the test harness's output capture, which tests pass without
/// running here, so a local `cargo test` never looks more complete than it is.
pub(crate) fn announce_skip(what: &str) {
    static ANNOUNCED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let Ok(mut announced) = ANNOUNCED.lock() else { return };
    if !announced.iter().any(|seen| seen == what) {
        announced.push(what.to_owned());
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "SKIPPED: {what}");
    }
}

/// A fresh PostgreSQL database on the test server; returns its URL.
pub(crate) fn create_postgres_database() -> String {
    let base = std::env::var(POSTGRES_URL_VAR).expect("PostgreSQL URL");
    let name = format!("portcullis_test_{}", random_hex());
    portcullis::db::init_postgres_client_library();
    let mut admin = PgConnection::establish(&base)
        .unwrap_or_else(|error| panic!("cannot reach PostgreSQL at {POSTGRES_URL_VAR}: {error}"));
    diesel::sql_query(format!("CREATE DATABASE {name}")).execute(&mut admin).expect("create test database");
    let (without_query, query) = base.split_once('?').map_or((base.as_str(), ""), |(a, b)| (a, b));
    let (server, _) = without_query.rsplit_once('/').expect("URL with a database name");
    if query.is_empty() { format!("{server}/{name}") } else { format!("{server}/{name}?{query}") }
}

pub(crate) async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

/// A server whose settings a test adjusts (short session timeouts, say).
pub(crate) async fn spawn_app_with(backend: Backend, adjust: impl FnOnce(&mut Settings)) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let database_url = match backend {
        Backend::Sqlite => format!("sqlite://{}", dir.path().join("test.db").display()),
        Backend::Postgres => create_postgres_database(),
    };
    let jwt_secret = portcullis::random::token_base64(48);
    start_instance(database_url, jwt_secret, dir, adjust).await
}

/// Today's server on an existing database (an older installation's, say), with the real
/// default second-factor policy and settings `adjust` changes.
pub(crate) async fn spawn_app_on_database(database_url: String, adjust: impl FnOnce(&mut Settings)) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    start_instance(database_url, portcullis::random::token_base64(48), dir, adjust).await
}

/// Another instance on the same database with the same secret, as behind a load balancer.
pub(crate) async fn spawn_second_instance(first: &TestApp) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    start_instance(first.database_url.clone(), first.jwt_secret.clone(), dir, |_| {}).await
}

/// Another instance on the same database, with settings a test adjusts.
pub(crate) async fn spawn_second_instance_with(first: &TestApp, adjust: impl FnOnce(&mut Settings)) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    start_instance(first.database_url.clone(), first.jwt_secret.clone(), dir, adjust).await
}

/// The same deployment restarted with another secret and no previous one.
pub(crate) async fn spawn_instance_with_secret(first: &TestApp, secret: &str) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    start_instance(first.database_url.clone(), secret.to_owned(), dir, |_| {}).await
}

/// The same deployment restarted with a new secret, the old one kept as
/// `PORTCULLIS_JWT_SECRET_PREVIOUS` (the documented rotation).
pub(crate) async fn spawn_rotated_instance(first: &TestApp) -> TestApp {
    spawn_rotated_instance_with(first, default_settings).await
}

/// `spawn_rotated_instance`, with settings a test adjusts.
pub(crate) async fn spawn_rotated_instance_with(first: &TestApp, adjust: impl FnOnce(&mut Settings)) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let old = portcullis::config::JwtSecret::parse(&first.jwt_secret, "old").unwrap();
    start_instance(first.database_url.clone(), portcullis::random::token_base64(48), dir, move |settings| {
        settings.jwt_secret_previous = Some(old);
        adjust(settings);
    })
    .await
}

/// Panics on the servers' threads (never a test's own assertion), kept for the whole run
/// so a test can say which thread panicked, where and why.
static SERVER_PANICS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// Fails the test, naming every panic any server thread has had so far in this run.
pub(crate) fn assert_no_server_panics() {
    let panics = SERVER_PANICS.lock().map(|panics| panics.clone()).unwrap_or_default();
    assert!(panics.is_empty(), "server threads panicked:\n{}", panics.join("\n"));
}

fn record_server_panics() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let thread = std::thread::current();
            if let Some(name) = thread.name().filter(|name| name.starts_with("actix"))
                && let Ok(mut panics) = SERVER_PANICS.lock()
            {
                panics.push(format!("[{name}] {info}"));
            }
            previous(info);
        }));
    });
}

async fn start_instance(
    database_url: String,
    jwt_secret: String,
    dir: tempfile::TempDir,
    adjust: impl FnOnce(&mut Settings),
) -> TestApp {
    record_server_panics();
    if std::env::var("TEST_LOG").is_ok() {
        portcullis::telemetry::init();
    }
    let env = [
        ("DATABASE_URL", database_url.clone()),
        ("PORTCULLIS_BIND", "127.0.0.1:0".to_owned()),
        ("PORTCULLIS_JWT_SECRET", jwt_secret.clone()),
        ("PORTCULLIS_PUBLIC_URL", "http://portcullis.test".to_owned()),
        ("PORTCULLIS_STATIC_DIR", concat!(env!("CARGO_MANIFEST_DIR"), "/static").to_owned()),
        ("PORTCULLIS_DB_POOL_SIZE", "4".to_owned()),
        // Most scenarios sign admins in with a password alone; the second-factor scenarios
        // (`second_factor.rs`) set the real default, `admins`, themselves.
        ("PORTCULLIS_MFA_REQUIRED", "off".to_owned()),
    ];
    let mut settings = Settings::from_lookup(|key| env.iter().find(|(k, _)| *k == key).map(|(_, v)| v.clone()))
        .expect("test settings");
    adjust(&mut settings);
    let pool = build_pool(&settings.database).expect("test pool");
    let application = Application::build(settings).await.expect("the application starts");
    let address = format!("http://127.0.0.1:{}", application.port());
    let server = application.handle();
    let statements = application.statements();
    tokio::spawn(application.run_until_stopped());

    let (client, cookies) = browser_client();
    TestApp {
        address,
        server,
        client,
        cookies,
        pool,
        jwt_secret,
        issuer: "http://portcullis.test".to_owned(),
        database_url,
        statements,
        _dir: Arc::new(dir),
    }
}

impl TestApp {
    /// The same server from another browser: its own cookie jar.
    pub(crate) fn in_new_browser(&self) -> TestApp {
        let (client, cookies) = browser_client();
        TestApp {
            address: self.address.clone(),
            server: self.server.clone(),
            client,
            cookies,
            pool: self.pool.clone(),
            jwt_secret: self.jwt_secret.clone(),
            issuer: self.issuer.clone(),
            database_url: self.database_url.clone(),
            statements: self.statements.clone(),
            _dir: Arc::clone(&self._dir),
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub(crate) async fn get(&self, path: &str) -> Response {
        self.client.get(self.url(path)).send().await.expect("GET")
    }

    pub(crate) async fn get_with_bearer(&self, path: &str, token: &str) -> Response {
        self.client.get(self.url(path)).bearer_auth(token).send().await.expect("GET")
    }

    pub(crate) async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> Response {
        let body = serde_urlencoded::to_string(fields).expect("form");
        self.client
            .post(self.url(path))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .expect("POST")
    }

    pub(crate) async fn post_json(&self, path: &str, body: &serde_json::Value) -> Response {
        self.client.post(self.url(path)).json(body).send().await.expect("POST")
    }

    pub(crate) async fn post_raw(&self, path: &str, content_type: &str, body: impl Into<reqwest::Body>) -> Response {
        self.client
            .post(self.url(path))
            .header(header::CONTENT_TYPE, content_type)
            .body(body)
            .send()
            .await
            .expect("POST")
    }

    /// A client with its own cookie jar: another browser.
    pub(crate) fn other_browser(&self) -> (reqwest::Client, Arc<reqwest::cookie::Jar>) {
        browser_client()
    }

    pub(crate) fn cookie(&self, name: &str) -> Option<String> {
        cookie_in(&self.cookies, &self.address, name)
    }

    /// Puts a cookie in this browser's jar, as a browser holding it would send it.
    pub(crate) fn set_cookie(&self, name: &str, value: &str) {
        let url: Url = self.address.parse().unwrap();
        self.cookies.add_cookie_str(&format!("{name}={value}; Path=/"), &url);
    }

    pub(crate) async fn create_user(&self, username: &str, role: Role) -> TestUser {
        let pool = self.pool.clone();
        let username = username.to_owned();
        tokio::task::spawn_blocking(move || {
            let hash = portcullis::auth::password::hash_blocking(PASSWORD).unwrap();
            let email = format!("{username}@example.com");
            let name = Username::parse(&username).unwrap();
            let mut conn = pool.get().unwrap();
            let user = users::insert(
                &mut conn,
                &NewUser {
                    username: &name,
                    email: &Email::parse(&email).unwrap(),
                    display_name: &DisplayName::parse(&username).unwrap(),
                    password_hash: &hash,
                    role,
                    must_change_password: false,
                },
            )
            .expect("insert user");
            TestUser {
                id: user.id,
                username: user.username.to_string(),
                email: user.email.to_string(),
                password: PASSWORD.to_owned(),
            }
        })
        .await
        .unwrap()
    }

    pub(crate) async fn with_conn<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut portcullis::db::DbConnection) -> T + Send + 'static,
    ) -> T {
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || work(&mut pool.get().unwrap())).await.unwrap()
    }

    /// GET /login and read the CSRF token from the form.
    pub(crate) async fn login_form_token(&self) -> String {
        let html = self.get("/login").await.text().await.unwrap();
        hidden_field(&html, "csrf_token").expect("the login form has a CSRF token")
    }

    pub(crate) async fn login(&self, login: &str, password: &str) -> Response {
        self.login_with_next(login, password, "").await
    }

    pub(crate) async fn login_with_next(&self, login: &str, password: &str, next: &str) -> Response {
        let csrf = self.login_form_token().await;
        self.post_form("/login", &[("username", login), ("password", password), ("csrf_token", &csrf), ("next", next)])
            .await
    }

    pub(crate) async fn login_as(&self, user: &TestUser) {
        let response = self.login(&user.username, &user.password).await;
        assert_eq!(response.status(), 303, "login as {} should succeed", user.username);
    }

    /// The CSRF token of the signed-in session, as the pages embed it.
    pub(crate) async fn session_csrf_token(&self) -> String {
        let html = self.get("/dashboard").await.text().await.unwrap();
        hidden_field(&html, "csrf_token").expect("signed-in pages carry a CSRF token")
    }

    pub(crate) async fn api_token(&self, user: &TestUser) -> String {
        self.api_login(user).await.access
    }

    /// `POST /api/token`: the access and refresh tokens of a new API session.
    pub(crate) async fn api_login(&self, user: &TestUser) -> ApiTokens {
        let response = self
            .post_json("/api/token", &serde_json::json!({"username": user.username, "password": user.password}))
            .await;
        assert_eq!(response.status(), 200);
        ApiTokens::from_body(&response.json().await.unwrap())
    }

    /// `POST /api/token/refresh`: new tokens, or the refusal's status.
    pub(crate) async fn api_refresh(&self, refresh_token: &str) -> Result<ApiTokens, u16> {
        let response = self.post_json("/api/token/refresh", &serde_json::json!({"refresh_token": refresh_token})).await;
        match response.status().as_u16() {
            200 => Ok(ApiTokens::from_body(&response.json().await.unwrap())),
            status => Err(status),
        }
    }

    /// The `kid` the server puts on tokens signed with its secret (a keyed hash of it).
    pub(crate) fn kid(&self) -> String {
        use base64::Engine;
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, self.jwt_secret.as_bytes());
        let tag = aws_lc_rs::hmac::sign(&key, b"portcullis key id v1");
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&tag.as_ref()[..9])
    }

    /// Replaces this browser's access cookie with the same token already expired (as if the
    /// browser had kept it past its time), signed like the real one.
    pub(crate) async fn expire_access_cookie(&self) {
        use base64::Engine;
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let token = self.cookie("portcullis").expect("an access cookie");
        let parts: Vec<&str> = token.split('.').collect();
        let header: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        let mut claims: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        let now = chrono::Utc::now().timestamp();
        claims["iat"] = (now - 1000).into();
        claims["nbf"] = (now - 1000).into();
        claims["exp"] = (now - 60).into();
        let resigned = self.sign_as_server(&header, &claims).await;
        self.set_cookie("portcullis", &resigned);
    }

    /// `claims` under `header`, signed with the key the header names, as the server would: the
    /// secret for HS256, else the stored key (opened with the secret).
    pub(crate) async fn sign_as_server(&self, header: &serde_json::Value, claims: &serde_json::Value) -> String {
        use base64::Engine;
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let input =
            format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
        let signature = match header["alg"].as_str() {
            Some("HS256") => {
                let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, self.jwt_secret.as_bytes());
                aws_lc_rs::hmac::sign(&key, input.as_bytes()).as_ref().to_vec()
            }
            alg => {
                let secret = portcullis::config::JwtSecret::parse(&self.jwt_secret, "test").unwrap();
                let keys = portcullis::auth::signing_keys::SigningKeys::new(
                    &secret,
                    None,
                    std::time::Duration::from_secs(900),
                );
                let loaded = self.with_conn(move |conn| keys.load(conn, portcullis::db::users::now()).unwrap()).await;
                let key = loaded
                    .into_iter()
                    .find(|key| Some(key.kid.as_str()) == header["kid"].as_str())
                    .expect("the stored key");
                let pkcs8 = key.private_pkcs8.expect("a private key the secret opens");
                match alg {
                    Some("EdDSA") => aws_lc_rs::signature::Ed25519KeyPair::from_pkcs8(&pkcs8)
                        .unwrap()
                        .sign(input.as_bytes())
                        .as_ref()
                        .to_vec(),
                    _ => aws_lc_rs::signature::EcdsaKeyPair::from_pkcs8(
                        &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                        &pkcs8,
                    )
                    .unwrap()
                    .sign(&aws_lc_rs::rand::SystemRandom::new(), input.as_bytes())
                    .unwrap()
                    .as_ref()
                    .to_vec(),
                }
            }
        };
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }
}

pub(crate) struct ApiTokens {
    pub access: String,
    pub refresh: String,
}

impl ApiTokens {
    fn from_body(body: &serde_json::Value) -> Self {
        Self {
            access: body["token"].as_str().expect("token").to_owned(),
            refresh: body["refresh_token"].as_str().expect("refresh_token").to_owned(),
        }
    }
}

/// A client like a browser: its own cookie jar, redirects not followed (tests check them).
fn browser_client() -> (reqwest::Client, Arc<reqwest::cookie::Jar>) {
    let cookies = Arc::new(reqwest::cookie::Jar::default());
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_provider(cookies.clone())
        .build()
        .expect("client");
    (client, cookies)
}

pub(crate) fn cookie_in(jar: &reqwest::cookie::Jar, address: &str, name: &str) -> Option<String> {
    let url: Url = address.parse().unwrap();
    let header = jar.cookies(&url)?;
    header.to_str().ok()?.split("; ").find_map(|pair| pair.strip_prefix(&format!("{name}=")).map(str::to_owned))
}

/// `request` written to `address` (`host:port`) byte for byte — no client rewrites its target
/// — and the whole answer, within 10 s.
pub(crate) async fn raw_http(address: &str, request: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.unwrap();
        answer
    };
    let answer = tokio::time::timeout(std::time::Duration::from_secs(10), exchange)
        .await
        .unwrap_or_else(|_| panic!("no answer within 10 s to {:?}", request.lines().next().unwrap_or_default()));
    String::from_utf8_lossy(&answer).into_owned()
}

/// Every header of `response` but `Date` and `X-Request-Id`, sorted: what two answers that must not differ are
/// compared by.
pub(crate) fn headers_but_date(response: &Response) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = response
        .headers()
        .iter()
        // Both differ on every answer: the time, and the request's own id.
        .filter(|(name, _)| *name != "date" && *name != "x-request-id")
        .map(|(name, value)| (name.to_string(), value.to_str().unwrap().to_owned()))
        .collect();
    headers.sort();
    headers
}

pub(crate) fn hidden_field(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_owned())
}

pub(crate) fn location(response: &Response) -> String {
    response.headers().get(header::LOCATION).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default()
}

/// All Set-Cookie headers of a response, raw.
pub(crate) fn set_cookies(response: &Response) -> Vec<String> {
    response.headers().get_all(header::SET_COOKIE).iter().map(|v| v.to_str().unwrap().to_owned()).collect()
}

/// Another browser: its own cookie jar, same server.
pub(crate) struct Browser {
    pub address: String,
    pub client: reqwest::Client,
}

impl Browser {
    pub(crate) async fn get(&self, path: &str) -> Response {
        self.client.get(format!("{}{}", self.address, path)).send().await.expect("GET")
    }

    pub(crate) async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> Response {
        self.client
            .post(format!("{}{}", self.address, path))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string(fields).unwrap())
            .send()
            .await
            .expect("POST")
    }

    pub(crate) async fn login(&self, login: &str, password: &str) -> Response {
        let html = self.get("/login").await.text().await.unwrap();
        let csrf = hidden_field(&html, "csrf_token").unwrap();
        self.post_form("/login", &[("username", login), ("password", password), ("csrf_token", &csrf)]).await
    }

    /// The session's CSRF token, read from a form on `path`.
    pub(crate) async fn csrf(&self, path: &str) -> String {
        let html = self.get(path).await.text().await.unwrap();
        hidden_field(&html, "csrf_token").unwrap_or_else(|| panic!("no CSRF token on {path}"))
    }
}

static FAST_HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();

impl TestApp {
    pub(crate) fn browser(&self) -> Browser {
        let (client, _) = self.other_browser();
        Browser { address: self.address.clone(), client }
    }

    /// `count` users named `{prefix}{n:03}`, all with password PASSWORD, inserted directly.
    pub(crate) async fn create_users_fast(&self, prefix: &str, count: usize) -> Vec<i64> {
        let hash = FAST_HASH.get_or_init(|| portcullis::auth::password::hash_blocking(PASSWORD).unwrap()).clone();
        let prefix = prefix.to_owned();
        self.with_conn(move |conn| {
            (0..count)
                .map(|n| {
                    let name = format!("{prefix}{n:03}");
                    users::insert(
                        conn,
                        &NewUser {
                            username: &Username::parse(&name).unwrap(),
                            email: &Email::parse(&format!("{name}@example.com")).unwrap(),
                            display_name: &DisplayName::parse(&name).unwrap(),
                            password_hash: &hash,
                            role: Role::User,
                            must_change_password: false,
                        },
                    )
                    .unwrap()
                    .id
                })
                .collect()
        })
        .await
    }

    /// Every user row and audit event, for "nothing changed" assertions.
    pub(crate) async fn snapshot(&self) -> String {
        self.with_conn(|conn| {
            use diesel::prelude::*;
            use portcullis::db::schema::{audit_events, users};
            let rows: Vec<portcullis::db::users::User> = users::table.order(users::id).load(conn).unwrap();
            let events: i64 = audit_events::table.count().get_result(conn).unwrap();
            format!("{rows:?}\naudit events: {events}")
        })
        .await
    }

    pub(crate) async fn audit_actions(&self) -> Vec<String> {
        self.with_conn(|conn| {
            use diesel::prelude::*;
            use portcullis::db::schema::audit_events;
            audit_events::table.order(audit_events::id).select(audit_events::action).load(conn).unwrap()
        })
        .await
    }

    pub(crate) async fn audit_details(&self) -> Vec<(String, Option<String>, Option<String>, String)> {
        self.with_conn(|conn| {
            use diesel::prelude::*;
            use portcullis::db::schema::audit_events;
            audit_events::table
                .order(audit_events::id)
                .select((
                    audit_events::action,
                    audit_events::actor_username,
                    audit_events::target_username,
                    audit_events::details,
                ))
                .load(conn)
                .unwrap()
        })
        .await
    }
}

/// Decodes the HTML entities the templates emit (`&#38;`, `&#60;`, `&amp;`, …).
pub(crate) fn unescape(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let Some(end) = rest.find(';').filter(|end| *end <= 8) else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..end];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            _ => entity
                .strip_prefix("#x")
                .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|dec| dec.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Asks `probe` every 50 ms until it says yes; returns how long that took, or `None` if it
/// never did within `limit`.
pub(crate) async fn within<F, Fut>(limit: std::time::Duration, mut probe: F) -> Option<std::time::Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = std::time::Instant::now();
    loop {
        if probe().await {
            return Some(started.elapsed());
        }
        if started.elapsed() > limit {
            return None;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// How long a change made elsewhere (the CLI, another instance) may take to be enforced.
pub(crate) const REVOCATION_LIMIT: std::time::Duration = std::time::Duration::from_secs(2);

/// An outbox that sends nothing, for calling account operations directly.
pub(crate) fn no_mail() -> portcullis::mail::Outbox {
    let secret = portcullis::config::JwtSecret::parse(&portcullis::random::token_base64(48), "test").unwrap();
    portcullis::mail::Outbox::off(&secret)
}
